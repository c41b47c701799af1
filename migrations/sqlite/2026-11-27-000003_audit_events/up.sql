-- The audit trail: one global hash chain (see src/domain/audit.rs). Append-only: the
-- application never updates or deletes a row; `seq` and `prev_hash` are unique, so two
-- writers that read the same head cannot both append (the chain never forks).
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    unit TEXT,
    action TEXT NOT NULL,
    state_before TEXT,
    state_after TEXT,
    payload TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    prev_hash TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_request ON audit_events (request_id, seq);
