-- Custom domains: DNS verification state, one row per domain (issue 7).
-- A domain verified for one deployment is not verified for another: `tenant` and `deployment`
-- record whom the state belongs to, and a move resets it to pending.
CREATE TABLE domains (
    domain      VARCHAR PRIMARY KEY,
    tenant      VARCHAR NOT NULL,
    deployment  VARCHAR NOT NULL,
    state       VARCHAR NOT NULL DEFAULT 'pending',  -- pending|verifying|verified|failed
    reason      VARCHAR,                             -- the last check's sentence
    added_at    TIMESTAMP NOT NULL,
    checked_at  TIMESTAMP,                           -- last check that finished
    verified_at TIMESTAMP,                           -- when it last became verified
    updated_at  TIMESTAMP NOT NULL
);

-- Every finished check, for `domains` history and support questions.
CREATE TABLE domain_checks (
    domain     VARCHAR NOT NULL,
    tenant     VARCHAR NOT NULL,
    deployment VARCHAR NOT NULL,
    checked_at TIMESTAMP NOT NULL,
    ok         BOOLEAN NOT NULL,
    transient  BOOLEAN NOT NULL,
    reason     VARCHAR NOT NULL,
    answers    VARCHAR                                -- CNAME chain and addresses seen
);
