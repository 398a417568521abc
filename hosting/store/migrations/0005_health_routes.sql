-- Health that blames the right part (issue 16). A health check's `status` is the app's own
-- answer (its container address from the host, or Docker's health check), and only it
-- decides an auto-restart; the route through the edge is recorded beside it.
ALTER TABLE health_checks ADD COLUMN route_status VARCHAR;  -- healthy | unhealthy | unknown; NULL: no route (databases)
ALTER TABLE health_checks ADD COLUMN route_detail VARCHAR;

-- Set when auto-restart gave up on a deployment (its restart cap was reached and a
-- restart_loop alert raised); cleared when it is seen healthy again. Rows with tenant '' and
-- deployment 'edge' count the edge's own failures.
ALTER TABLE health_state ADD COLUMN held_at TIMESTAMP;
