DROP INDEX tasks_unit_status;
ALTER TABLE tasks DROP COLUMN claimed_at;
ALTER TABLE tasks DROP COLUMN claimed_by;
ALTER TABLE requests DROP COLUMN extended;
ALTER TABLE requests DROP COLUMN special_procedure;
