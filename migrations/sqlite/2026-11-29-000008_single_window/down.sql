DELETE FROM clocks WHERE kind IN ('opinion', 'material', 'on_the_spot', 'immediate');
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
CREATE INDEX clocks_matter_breached ON clocks (matter, breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX clocks_kind_breached ON clocks (kind, breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX clocks_open_breached ON clocks (breached_at)
    WHERE breached_at IS NOT NULL AND stopped_at IS NULL;
CREATE INDEX clocks_unit_open_due ON clocks (unit, due_at)
    WHERE stopped_at IS NULL AND state = 'running';
ALTER TABLE rectifications DROP COLUMN no_contact_reason;
ALTER TABLE materials DROP COLUMN received_at_window;
ALTER TABLE materials DROP COLUMN supplied_by;
ALTER TABLE materials DROP COLUMN supplied_at;
ALTER TABLE requests DROP COLUMN delivered_at;
ALTER TABLE requests DROP COLUMN certificate;
ALTER TABLE requests DROP COLUMN result_kind;
ALTER TABLE tasks DROP COLUMN opinion_at;
ALTER TABLE tasks DROP COLUMN opinion_by;
ALTER TABLE tasks DROP COLUMN opinion_note;
ALTER TABLE tasks DROP COLUMN opinion;
