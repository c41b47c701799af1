DROP INDEX clocks_material_id;
DROP INDEX clocks_task_id;
DROP INDEX idempotency_keys_request_id;
