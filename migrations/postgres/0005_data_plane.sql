-- The data plane: which agent provisions or owns each database, its lease on in-flight work, and
-- why a database failed.
ALTER TABLE databases ADD COLUMN agent_id TEXT;        -- the agent (host) that provisions and owns it
ALTER TABLE databases ADD COLUMN lease_until BIGINT;  -- an in-flight transition's lease; expired = up for grabs
ALTER TABLE databases ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE databases ADD COLUMN failure_reason TEXT;
CREATE INDEX databases_work ON databases(state, lease_until);
