-- Server processes that have run against this database: one row per start.
-- Ids are UUID v7 text and times are UTC, both made in Rust (see docs/architecture.md).
CREATE TABLE service_instances (
    id TEXT PRIMARY KEY NOT NULL,
    hostname TEXT NOT NULL,
    pid BIGINT NOT NULL,
    version TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    stopped_at TIMESTAMP
);
CREATE INDEX service_instances_started_at ON service_instances (started_at);
