-- Usage as the metering agent and `meter import` record it (SPEC.md section 4).
-- All timestamps are UTC, stored as TIMESTAMP (no zone) so readers need no tz database.

-- One row per deployment known to the platform (the product document's `deployments`).
CREATE TABLE deployments (
    tenant          VARCHAR NOT NULL,
    deployment      VARCHAR NOT NULL,
    deployment_type VARCHAR NOT NULL,          -- web | api | database
    status          VARCHAR NOT NULL DEFAULT 'pending',  -- pending|building|running|stopped|failed
    container_id    VARCHAR,
    subdomain       VARCHAR,
    custom_domain   VARCHAR,
    port            INTEGER,
    config          JSON,
    build_logs      VARCHAR,
    deployed_at     TIMESTAMP,
    health_status   VARCHAR NOT NULL DEFAULT 'unknown',  -- healthy|unhealthy|unknown
    updated_at      TIMESTAMP,
    PRIMARY KEY (tenant, deployment)
);

-- Samples: one row per deployment per collection interval (or per imported event, with
-- only that event's column set). `event_id` makes every write idempotent.
CREATE TABLE deployment_metrics (
    event_id          VARCHAR NOT NULL,
    tenant            VARCHAR NOT NULL,
    deployment        VARCHAR NOT NULL,
    "timestamp"       TIMESTAMP NOT NULL,
    cpu_usage         DOUBLE,     -- percent of one core
    memory_usage      BIGINT,     -- bytes (working set)
    bandwidth_in      BIGINT,     -- bytes in the interval
    bandwidth_out     BIGINT,     -- bytes in the interval
    requests_count    BIGINT,
    response_time_avg DOUBLE,     -- milliseconds
    error_count       BIGINT
);

-- Storage measurements with history: each holds until the next one of the same
-- (tenant, deployment, storage_type).
CREATE TABLE deployment_storage (
    event_id        VARCHAR NOT NULL,
    tenant          VARCHAR NOT NULL,
    deployment      VARCHAR NOT NULL,
    storage_type    VARCHAR NOT NULL,   -- code | database | static | logs | cache
    size_bytes      BIGINT NOT NULL,
    file_count      BIGINT,
    last_calculated TIMESTAMP NOT NULL
);
