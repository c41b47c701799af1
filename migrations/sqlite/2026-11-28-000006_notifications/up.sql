-- Notifications through a transactional outbox, the good/bad ratings (好差评) and the
-- rectification cases a bad rating opens, with their own clocks.

-- One row per mail, written in the transaction of the change that causes it. The sender
-- worker claims due rows (locked_until), delivers them, and records the outcome.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    -- Deterministic: the same notification always carries the same Message-ID.
    message_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_created ON notifications (created_at, id);
CREATE INDEX notifications_request ON notifications (request_id);

CREATE TABLE ratings (
    request_id TEXT PRIMARY KEY NOT NULL REFERENCES requests (id),
    uscc TEXT NOT NULL,
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
    comment TEXT NOT NULL,
    unit TEXT NOT NULL,
    matter TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ratings_unit ON ratings (unit, created_at);
CREATE INDEX ratings_matter ON ratings (matter, created_at);

CREATE TABLE rectifications (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL UNIQUE REFERENCES requests (id),
    unit TEXT NOT NULL,
    level INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'contacted', 'closed')),
    contacted_at TIMESTAMP,
    contact_note TEXT,
    closed_at TIMESTAMP,
    closing_note TEXT,
    created_at TIMESTAMP NOT NULL,
    revision INTEGER NOT NULL
);
CREATE INDEX rectifications_unit_status ON rectifications (unit, status);

-- Clocks of rectification cases: contact the enterprise, then rectify. SQLite cannot change a
-- CHECK constraint in place: the table is rebuilt with the same columns and indexes.
CREATE TABLE clocks_new (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    task_id TEXT REFERENCES tasks (id),
    kind TEXT NOT NULL CHECK (kind IN ('window_intake', 'supplement_notice', 'promised',
        'statutory', 'delivery', 'rectification_contact', 'rectification')),
    target TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'paused', 'met', 'breached',
        'cancelled')),
    started_at TIMESTAMP,
    due_at TIMESTAMP,
    unit TEXT NOT NULL DEFAULT '',
    matter TEXT NOT NULL DEFAULT '',
    warn_at TIMESTAMP,
    warned_at TIMESTAMP,
    check_at TIMESTAMP,
    breached_at TIMESTAMP,
    stopped_at TIMESTAMP,
    paused_at TIMESTAMP,
    paused_seconds BIGINT NOT NULL DEFAULT 0,
    pauses TEXT NOT NULL DEFAULT '[]',
    resumed_at TIMESTAMP,
    remaining_seconds BIGINT,
    extended_days INTEGER NOT NULL DEFAULT 0,
    worked_minutes BIGINT,
    lost_to_unit TEXT,
    lost_minutes BIGINT NOT NULL DEFAULT 0
);
INSERT INTO clocks_new (id, request_id, task_id, kind, target, state, started_at, due_at, unit, matter, warn_at,
    warned_at, check_at, breached_at, stopped_at, paused_at, paused_seconds, pauses, resumed_at,
    remaining_seconds, extended_days, worked_minutes, lost_to_unit, lost_minutes)
    SELECT id, request_id, task_id, kind, target, state, started_at, due_at, unit, matter, warn_at,
    warned_at, check_at, breached_at, stopped_at, paused_at, paused_seconds, pauses, resumed_at,
    remaining_seconds, extended_days, worked_minutes, lost_to_unit, lost_minutes FROM clocks;
DROP TABLE clocks;
ALTER TABLE clocks_new RENAME TO clocks;
CREATE INDEX clocks_request ON clocks (request_id);
CREATE INDEX clocks_state_due ON clocks (state, due_at);
CREATE INDEX clocks_check_at ON clocks (check_at) WHERE check_at IS NOT NULL;
CREATE INDEX clocks_breached ON clocks (breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX clocks_unit_breached ON clocks (unit, breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX clocks_open_due ON clocks (due_at) WHERE stopped_at IS NULL AND state = 'running';
CREATE INDEX clocks_stopped ON clocks (stopped_at) WHERE stopped_at IS NOT NULL;
