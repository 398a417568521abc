-- Payments through Stripe (issue 15): customers, PaymentIntents, webhook events, refunds,
-- dunning steps and suspensions. Invoices themselves stay in billing_invoices; these tables
-- only point at them by number (no foreign keys, as in 0003: status updates must stay possible).

-- A tenant becomes a Stripe Customer once: the id is kept for every later collection.
CREATE TABLE payment_customers (
    tenant      VARCHAR PRIMARY KEY,
    customer_id VARCHAR NOT NULL UNIQUE,          -- cus_…
    created_at  TIMESTAMP NOT NULL
);

-- One PaymentIntent per invoice, created with the invoice number as idempotency key.
CREATE TABLE payment_intents (
    invoice_number VARCHAR PRIMARY KEY,
    intent_id      VARCHAR NOT NULL UNIQUE,       -- pi_…
    tenant         VARCHAR NOT NULL,
    customer_id    VARCHAR NOT NULL,
    amount_cents   BIGINT NOT NULL,
    currency       VARCHAR NOT NULL,
    status         VARCHAR NOT NULL,              -- Stripe's, as last seen
    charge_id      VARCHAR,                       -- ch_… once a webhook says it succeeded
    attempts       INTEGER NOT NULL,              -- creation + dunning retries
    last_error     VARCHAR,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

-- Every verified webhook event, once: a replayed event id changes nothing.
CREATE TABLE payment_events (
    event_id       VARCHAR PRIMARY KEY,           -- evt_…
    type           VARCHAR NOT NULL,
    intent_id      VARCHAR,
    invoice_number VARCHAR,
    outcome        VARCHAR NOT NULL,              -- e.g. paid, failed, ignored: …
    received_at    TIMESTAMP NOT NULL
);

-- Refunds issued through Stripe, each with the credit note that documents it.
CREATE TABLE payment_refunds (
    refund_id      VARCHAR PRIMARY KEY,           -- re_…
    invoice_number VARCHAR NOT NULL,
    credit_note    VARCHAR,                       -- CN-YYYYMMDD-NNNNNN
    amount         DECIMAL(18, 2) NOT NULL,
    created_at     TIMESTAMP NOT NULL
);

-- Each dunning step taken for an unpaid invoice: retries (day 1, 3, 7), reminders, the
-- suspension. One step of a kind per invoice and schedule day, so a second run the same
-- day does nothing again.
CREATE TABLE dunning_steps (
    invoice_number VARCHAR NOT NULL,
    tenant         VARCHAR NOT NULL,
    step           VARCHAR NOT NULL CHECK (step IN ('retry', 'reminder', 'suspend')),
    day            INTEGER NOT NULL,              -- days past the due date
    on_date        DATE NOT NULL,                 -- the (injectable) today it ran
    outcome        VARCHAR NOT NULL,
    recorded_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (invoice_number, step, day)
);

-- Suspensions: open while lifted_on is NULL. A tenant has at most one open suspension.
CREATE TABLE tenant_suspensions (
    tenant         VARCHAR NOT NULL,
    suspended_on   DATE NOT NULL,
    invoice_number VARCHAR NOT NULL,              -- the unpaid invoice that caused it
    lifted_on      DATE,
    lifted_by      VARCHAR,                       -- what paid it (event id or command)
    recorded_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant, suspended_on)
);
