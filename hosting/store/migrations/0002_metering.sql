-- The metering agent's own tables (issue 4). 0001 holds the usage tables billing reads.
-- State tables have no primary key on purpose: they are rewritten by DELETE + INSERT inside
-- the collector's transaction, which DuckDB's ART indexes handle badly for the same key.

-- One row per health probe of a deployment.
CREATE TABLE health_checks (
    tenant      VARCHAR NOT NULL,
    deployment  VARCHAR NOT NULL,
    checked_at  TIMESTAMP NOT NULL,
    status      VARCHAR NOT NULL,        -- healthy | unhealthy | unknown
    detail      VARCHAR,
    http_status INTEGER,
    latency_ms  DOUBLE
);

-- Consecutive failed probes per deployment, reset on success or after a restart.
CREATE TABLE health_state (
    tenant     VARCHAR NOT NULL,
    deployment VARCHAR NOT NULL,
    failures   INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Things the agent did or noticed: auto-restarts, collector failures worth keeping.
CREATE TABLE metering_events (
    event_id   VARCHAR NOT NULL,
    tenant     VARCHAR NOT NULL,
    deployment VARCHAR NOT NULL,
    kind       VARCHAR NOT NULL,         -- restart
    detail     VARCHAR,
    created_at TIMESTAMP NOT NULL
);

-- Storage warnings (>= 90%), storage full (>= 100%) and bandwidth overage, per tenant.
CREATE TABLE alerts (
    alert_id    VARCHAR NOT NULL,
    tenant      VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,        -- storage | bandwidth
    level       VARCHAR NOT NULL,        -- warning | full | overage
    message     VARCHAR NOT NULL,
    used        DOUBLE NOT NULL,         -- bytes
    "limit"     DOUBLE NOT NULL,         -- bytes
    created_at  TIMESTAMP NOT NULL
);

-- The last counter reading per container life, so the next cycle records only the delta.
CREATE TABLE container_readings (
    container_id VARCHAR NOT NULL,
    tenant       VARCHAR NOT NULL,
    deployment   VARCHAR NOT NULL,
    started_at   VARCHAR NOT NULL,       -- the engine's State.StartedAt: one container life
    read_at      TIMESTAMP NOT NULL,
    cpu_ns       BIGINT NOT NULL,
    rx_bytes     BIGINT NOT NULL,
    tx_bytes     BIGINT NOT NULL
);

-- How far each proxy access log has been read: the file's inode and the byte offset after the
-- last complete line, so rotation and agent restarts neither skip nor repeat a request.
CREATE TABLE proxy_log_offsets (
    path       VARCHAR NOT NULL,
    inode      BIGINT NOT NULL,
    "offset"   BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Bytes of access-log lines attributed to each deployment: its share of the logs storage.
CREATE TABLE access_log_bytes (
    tenant     VARCHAR NOT NULL,
    deployment VARCHAR NOT NULL,
    bytes      BIGINT NOT NULL
);

-- The current level per tenant and alert kind, so an alert is recorded when a level is
-- reached, not every cycle, and again after it cleared and came back.
CREATE TABLE alert_state (
    tenant     VARCHAR NOT NULL,
    kind       VARCHAR NOT NULL,
    level      VARCHAR NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
