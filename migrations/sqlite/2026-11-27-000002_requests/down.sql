DROP TABLE request_counters;
DROP TABLE idempotency_keys;
DROP TABLE routing_decisions;
DROP TABLE clocks;
DROP TABLE materials;
DROP TABLE tasks;
DROP TABLE requests;
DROP TABLE catalog_versions;
