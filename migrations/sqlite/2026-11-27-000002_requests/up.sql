-- Intake: catalog versions, requests, their tasks, materials, clocks, routing decisions,
-- idempotency keys and the per-day request number counters.
-- Portable types only: TEXT ids (UUID v7) and enumerations (with CHECK), UTC TIMESTAMPs,
-- BOOLEAN, INTEGER/BIGINT. Times and ids are made in Rust.

CREATE TABLE catalog_versions (
    version TEXT PRIMARY KEY NOT NULL,
    matters INTEGER NOT NULL,
    bundles INTEGER NOT NULL,
    first_loaded_at TIMESTAMP NOT NULL
);

CREATE TABLE requests (
    id TEXT PRIMARY KEY NOT NULL,
    number TEXT NOT NULL UNIQUE,
    uscc TEXT NOT NULL,
    applicant_name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('matter', 'bundle')),
    code TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('online', 'window', 'self_service', 'cross_region')),
    intake_region TEXT,
    contact_email TEXT NOT NULL,
    form TEXT NOT NULL,
    commitment BOOLEAN NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('submitted', 'called', 'accepted', 'not_accepted',
        'supplement_required', 'under_review', 'approved', 'denied', 'completed', 'delivered',
        'withdrawn', 'returned')),
    lead_unit TEXT NOT NULL,
    catalog_version TEXT NOT NULL REFERENCES catalog_versions (version),
    revision INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX requests_uscc_id ON requests (uscc, id);
CREATE INDEX requests_status ON requests (status);
CREATE INDEX requests_created_at ON requests (created_at);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    unit TEXT NOT NULL,
    matter_code TEXT NOT NULL,
    category TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('lead', 'co', 'coordinator')),
    status TEXT NOT NULL CHECK (status IN ('submitted', 'called', 'accepted', 'not_accepted',
        'supplement_required', 'under_review', 'approved', 'denied', 'completed', 'delivered',
        'withdrawn', 'returned')),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX tasks_request ON tasks (request_id);
CREATE INDEX tasks_unit_request ON tasks (unit, request_id);

CREATE TABLE materials (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    matter_code TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT,
    size_bytes BIGINT,
    status TEXT NOT NULL CHECK (status IN ('provided', 'pending')),
    due_at TIMESTAMP,
    UNIQUE (request_id, matter_code, code)
);

CREATE TABLE clocks (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    task_id TEXT REFERENCES tasks (id),
    kind TEXT NOT NULL CHECK (kind IN ('window_intake', 'supplement_notice', 'promised',
        'statutory', 'delivery')),
    target TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'paused', 'met', 'breached',
        'cancelled')),
    started_at TIMESTAMP,
    due_at TIMESTAMP
);
CREATE INDEX clocks_request ON clocks (request_id);
CREATE INDEX clocks_state_due ON clocks (state, due_at);

CREATE TABLE routing_decisions (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    catalog_version TEXT NOT NULL REFERENCES catalog_versions (version),
    reason TEXT NOT NULL,
    explanation TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL
);
CREATE INDEX routing_decisions_request ON routing_decisions (request_id);

CREATE TABLE idempotency_keys (
    uscc TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    -- Claimed before the request row exists, inside the same transaction.
    request_id TEXT NOT NULL REFERENCES requests (id) DEFERRABLE INITIALLY DEFERRED,
    status_code INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (uscc, idempotency_key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

CREATE TABLE request_counters (
    day TEXT PRIMARY KEY NOT NULL,
    last_number INTEGER NOT NULL
);
