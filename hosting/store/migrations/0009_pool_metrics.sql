-- Connection pooling (issue 12): PgBouncer's counts for a pooled database, sampled by the
-- metering agent with the database's other metrics (NULL for everything else).
ALTER TABLE deployment_metrics ADD COLUMN pool_clients BIGINT;  -- client connections to the pooler
ALTER TABLE deployment_metrics ADD COLUMN pool_waiting BIGINT;  -- clients waiting for a server connection
ALTER TABLE deployment_metrics ADD COLUMN pool_servers BIGINT;  -- server connections the pooler holds
