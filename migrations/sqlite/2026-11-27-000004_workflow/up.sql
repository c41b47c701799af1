-- Workflow: the special-procedure and extension flags of the lifecycle, and queue claims.
ALTER TABLE requests ADD COLUMN special_procedure BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE requests ADD COLUMN extended BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tasks ADD COLUMN claimed_by TEXT;
ALTER TABLE tasks ADD COLUMN claimed_at TIMESTAMP;
CREATE INDEX tasks_unit_status ON tasks (unit, status);
