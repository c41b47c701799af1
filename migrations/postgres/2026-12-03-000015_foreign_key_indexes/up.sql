-- Every foreign-key column leads an index (tests/api/schema_parity.rs checks it on SQLite).
-- The idempotency key is inserted before its request in the same transaction (a deferred key):
-- without this index, inserting the request made SQLite search every stored key.
CREATE INDEX idempotency_keys_request_id ON idempotency_keys (request_id);
-- Per-unit clocks of a bundle and material clocks: a minority of clocks, so partial indexes.
CREATE INDEX clocks_task_id ON clocks (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX clocks_material_id ON clocks (material_id) WHERE material_id IS NOT NULL;
