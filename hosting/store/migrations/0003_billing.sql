-- Billing (SPEC.md section 3): subscriptions with their history, invoices and their lines.
-- Dates are calendar days in UTC; timestamps are naive UTC like the rest of the store.
-- No foreign keys: DuckDB refuses updates of rows that other tables reference, and invoice
-- status changes must stay possible; the code keeps the references consistent.

-- One row per subscription (a tenant gets a new one only if it is removed and comes back).
-- Never updated: whether it has ended is the `end` row of its history.
CREATE TABLE subscriptions (
    id          VARCHAR PRIMARY KEY,          -- uuid
    tenant      VARCHAR NOT NULL,
    tenant_name VARCHAR NOT NULL,
    email       VARCHAR NOT NULL,
    started     DATE NOT NULL,                -- the first anchor day
    created_at  TIMESTAMP NOT NULL
);

-- Append-only: every start, plan/cycle/terms change and end, with the plan's terms as they
-- were, so old periods price the same forever even if the file's plans change later.
CREATE TABLE subscription_history (
    tenant          VARCHAR NOT NULL,
    seq             INTEGER NOT NULL,         -- order of recording, per tenant
    subscription_id VARCHAR NOT NULL,
    effective       DATE NOT NULL,            -- the change day belongs to the new terms
    event           VARCHAR NOT NULL CHECK (event IN ('start', 'change', 'end')),
    plan            VARCHAR,                  -- NULL for `end`
    billing_cycle   VARCHAR CHECK (billing_cycle IN ('monthly', 'yearly')),
    price_monthly   DECIMAL(18, 2),
    price_yearly    DECIMAL(18, 2),
    storage_gb      INTEGER,
    bandwidth_gb    INTEGER,
    recorded_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant, seq)
);

-- The gapless invoice counter: read and advanced in the same transaction that inserts the
-- invoices (DuckDB sequences may skip values; this one cannot).
CREATE TABLE billing_invoice_sequence (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_value BIGINT NOT NULL
);
INSERT INTO billing_invoice_sequence VALUES (1, 0);

CREATE TABLE billing_invoices (
    invoice_number        VARCHAR PRIMARY KEY,   -- INV-YYYYMMDD-NNNNNN (date = period end)
    seq                   BIGINT NOT NULL UNIQUE, -- NNNNNN
    tenant                VARCHAR NOT NULL,
    tenant_name           VARCHAR NOT NULL,
    tenant_email          VARCHAR NOT NULL,
    subscription_id       VARCHAR NOT NULL,
    plan                  VARCHAR NOT NULL,      -- the plan on the period's last day
    billing_cycle         VARCHAR NOT NULL,
    amount                DECIMAL(18, 2) NOT NULL, -- = base_cost + storage_cost + bandwidth_cost
    currency              VARCHAR NOT NULL DEFAULT 'USD',
    status                VARCHAR NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'paid', 'failed', 'refunded')),
    period_start          TIMESTAMP NOT NULL,
    period_end            TIMESTAMP NOT NULL,
    base_cost             DECIMAL(18, 2) NOT NULL, -- base and credit lines
    storage_cost          DECIMAL(18, 2) NOT NULL,
    bandwidth_cost        DECIMAL(18, 2) NOT NULL,
    storage_used_gb       DECIMAL(38, 12) NOT NULL, -- time-weighted average
    storage_included_gb   INTEGER NOT NULL,
    bandwidth_used_gb     DECIMAL(38, 12) NOT NULL,
    bandwidth_included_gb INTEGER NOT NULL,
    paid_at               TIMESTAMP,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    -- One invoice per tenant and period, whatever runs concurrently.
    UNIQUE (tenant, period_start)
);

CREATE TABLE invoice_lines (
    invoice_number VARCHAR NOT NULL,
    line_no        INTEGER NOT NULL,
    kind           VARCHAR NOT NULL CHECK (kind IN ('base', 'credit', 'storage', 'bandwidth')),
    description    VARCHAR NOT NULL,
    quantity       DECIMAL(38, 12) NOT NULL,
    unit_price     DECIMAL(18, 2) NOT NULL,
    amount         DECIMAL(18, 2) NOT NULL,       -- rounded to cents, half up
    plan           VARCHAR,
    PRIMARY KEY (invoice_number, line_no)
);
