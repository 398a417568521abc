-- Restore drills (issue 12): the agent restores the newest backup of each database into a
-- throwaway container and compares row counts with those taken when the backup was made.
-- One row per drill; a backup with no row here was never restored.
CREATE TABLE restore_drills (
    tenant         VARCHAR NOT NULL,
    deployment     VARCHAR NOT NULL,
    backup         VARCHAR NOT NULL,              -- the file's name in the deployment's folder
    started_at     TIMESTAMP NOT NULL,            -- UTC
    finished_at    TIMESTAMP NOT NULL,
    seconds        DOUBLE NOT NULL,
    ok             BOOLEAN NOT NULL,
    reason         VARCHAR,                       -- why it failed, one line; NULL when ok
    tables_checked INTEGER NOT NULL,
    rows_checked   BIGINT NOT NULL
);
CREATE INDEX restore_drills_by_deployment ON restore_drills (tenant, deployment, started_at);
