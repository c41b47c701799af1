CREATE INDEX requests_status ON requests (status);
DROP INDEX requests_status_id;
