-- Invoices as legal documents (issue 15): the document as issued (seller, buyer, dates, tax,
-- totals), credit notes with their own gapless counter, and deliveries by email.
--
-- Immutability is the store's, not a convention. DuckDB has neither triggers nor grants,
-- but it refuses to update or delete a row that a foreign key references whenever the change
-- runs as delete + insert, which it does for every update of a table carrying a CHECK over
-- several columns including its key. Each immutable table below carries such a CHECK, and
-- every row gets a "seal" row referencing it in the transaction that writes it: from then on
-- UPDATE and DELETE of that row fail with a constraint error. tests/billing/test_immutable.py
-- tries every column on the pinned DuckDB, so an upgrade that changes this fails the suite.
-- Payment state (status, paid_at) stays in billing_invoices, which must change.

-- The invoice as issued. `total` = `net` + `tax` is what billing_invoices.amount holds from
-- this migration on (before it, tax did not exist and the two are equal).
CREATE TABLE invoice_documents (
    invoice_number VARCHAR PRIMARY KEY,
    issue_date     DATE NOT NULL,
    due_date       DATE NOT NULL,             -- issue date + terms_days
    terms_days     INTEGER NOT NULL,
    seller_name    VARCHAR NOT NULL,
    seller_address VARCHAR NOT NULL,
    seller_tax_id  VARCHAR NOT NULL,
    seller_email   VARCHAR NOT NULL,
    footer         VARCHAR NOT NULL,
    buyer_name     VARCHAR NOT NULL,
    buyer_email    VARCHAR NOT NULL,
    buyer_address  VARCHAR NOT NULL,
    buyer_tax_id   VARCHAR NOT NULL,
    currency       VARCHAR NOT NULL,
    net            DECIMAL(18, 2) NOT NULL,   -- the sum of the rounded lines
    tax_rate       DECIMAL(9, 4) NOT NULL,    -- percent
    tax            DECIMAL(18, 2) NOT NULL,   -- net × rate ÷ 100, rounded half up to the cent
    total          DECIMAL(18, 2) NOT NULL,
    issued_at      TIMESTAMP NOT NULL,
    CHECK (invoice_number LIKE 'INV-%' AND total = net + tax AND terms_days >= 0
           AND due_date = issue_date + terms_days AND tax_rate >= 0)
);
CREATE TABLE invoice_seals (
    invoice_number VARCHAR PRIMARY KEY REFERENCES invoice_documents (invoice_number)
);

-- invoice_lines again, with the multi-column CHECK that makes its sealed rows immutable.
CREATE TABLE invoice_lines_sealed (
    invoice_number VARCHAR NOT NULL,
    line_no        INTEGER NOT NULL,
    kind           VARCHAR NOT NULL CHECK (kind IN ('base', 'credit', 'storage', 'bandwidth')),
    description    VARCHAR NOT NULL,
    quantity       DECIMAL(38, 12) NOT NULL,
    unit_price     DECIMAL(18, 2) NOT NULL,
    amount         DECIMAL(18, 2) NOT NULL,   -- rounded to cents, half up
    plan           VARCHAR,
    PRIMARY KEY (invoice_number, line_no),
    CHECK (invoice_number LIKE 'INV-%' AND line_no >= 1)
);
INSERT INTO invoice_lines_sealed SELECT * FROM invoice_lines;
DROP TABLE invoice_lines;
ALTER TABLE invoice_lines_sealed RENAME TO invoice_lines;
CREATE TABLE invoice_line_seals (
    invoice_number VARCHAR NOT NULL,
    line_no        INTEGER NOT NULL,
    PRIMARY KEY (invoice_number, line_no),
    FOREIGN KEY (invoice_number, line_no) REFERENCES invoice_lines (invoice_number, line_no)
);

-- Invoices issued before this migration become documents as they were: no seller or buyer
-- details beyond the name and email they carried, no tax, due on their issue day.
INSERT INTO invoice_documents
SELECT invoice_number, created_at::DATE, created_at::DATE, 0, '', '', '', '', '',
       tenant_name, tenant_email, '', '', currency, amount, 0, 0, amount, created_at
FROM billing_invoices;
INSERT INTO invoice_seals SELECT invoice_number FROM invoice_documents;
INSERT INTO invoice_line_seals SELECT invoice_number, line_no FROM invoice_lines;

-- Credit notes: CN-YYYYMMDD-NNNNNN (the date is the issue date), gapless like invoices.
CREATE TABLE credit_note_sequence (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_value BIGINT NOT NULL
);
INSERT INTO credit_note_sequence VALUES (1, 0);

CREATE TABLE credit_notes (
    credit_note_number VARCHAR PRIMARY KEY,
    seq                BIGINT NOT NULL UNIQUE,
    invoice_number     VARCHAR NOT NULL REFERENCES invoice_documents (invoice_number),
    issue_date         DATE NOT NULL,
    currency           VARCHAR NOT NULL,
    amount             DECIMAL(18, 2) NOT NULL,  -- credited, tax included
    net                DECIMAL(18, 2) NOT NULL,
    tax                DECIMAL(18, 2) NOT NULL,
    reason             VARCHAR NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    CHECK (credit_note_number LIKE 'CN-%' AND amount > 0 AND amount = net + tax AND seq >= 1)
);
CREATE TABLE credit_note_seals (
    credit_note_number VARCHAR PRIMARY KEY REFERENCES credit_notes (credit_note_number)
);

-- Every email sent about an invoice: the invoice itself, or (issue 15's dunning) a reminder.
-- Append-only; `invoice send` without --resend skips invoices with a kind 'invoice' row.
CREATE TABLE invoice_deliveries (
    invoice_number VARCHAR NOT NULL REFERENCES invoice_documents (invoice_number),
    attempt        INTEGER NOT NULL,          -- 1, 2, … per invoice, over every kind
    kind           VARCHAR NOT NULL,          -- invoice | reminder
    recipient      VARCHAR NOT NULL,
    message_id     VARCHAR NOT NULL,
    sent_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (invoice_number, attempt)
);
