-- Issue 18: the request list's filters read through indexes (found by tests/api/plans.rs, which
-- explains every list on a seeded database): by category and matter of a task, by matter
-- code and channel of the request. Each ends in the id the list pages by.
CREATE INDEX tasks_category_request ON tasks (category, request_id);
CREATE INDEX tasks_matter_request ON tasks (matter_code, request_id);
CREATE INDEX requests_code_id ON requests (code, id);
CREATE INDEX requests_channel_id ON requests (channel, id);
