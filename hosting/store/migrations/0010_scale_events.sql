-- Autoscaling (issue 11): every change the metering agent made to a service's replica count,
-- with the reason, for `status` and the usage report.
CREATE TABLE scale_events (
    tenant        VARCHAR NOT NULL,
    deployment    VARCHAR NOT NULL,
    "timestamp"   TIMESTAMP NOT NULL,
    from_replicas INTEGER NOT NULL,
    to_replicas   INTEGER NOT NULL,
    reason        VARCHAR NOT NULL,
    cpu_percent   DOUBLE            -- CPU per replica, percent of its plan (NULL: bounds only)
);
