CREATE INDEX tasks_unit_status ON tasks (unit, status);
DROP INDEX tasks_unit_status_created;
CREATE INDEX requests_status ON requests (status);
DROP INDEX requests_status_id;
