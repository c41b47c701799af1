-- Single-window authority (issue: lead unit speaks, co-units give opinions), 容缺 materials
-- followed to the end, the delivered result on the request, and the clocks that follow the
-- visit: opinion, material, 立等可取 (on_the_spot) and 即办件 (immediate) clocks.

-- Opinion tasks (co-units of a matter): the opinion, its note, who gave it and when.
ALTER TABLE tasks ADD COLUMN opinion TEXT CHECK (opinion IN ('agree', 'agree_with_conditions', 'disagree'));
ALTER TABLE tasks ADD COLUMN opinion_note TEXT;
ALTER TABLE tasks ADD COLUMN opinion_by TEXT;
ALTER TABLE tasks ADD COLUMN opinion_at TIMESTAMP;

-- The delivered result, on the request itself (was only in the deliver event's payload).
ALTER TABLE requests ADD COLUMN result_kind TEXT CHECK (result_kind IN ('approval', 'denial'));
ALTER TABLE requests ADD COLUMN certificate TEXT;
ALTER TABLE requests ADD COLUMN delivered_at TIMESTAMP;

-- 容缺: a deferred material supplied later, online or at the window.
ALTER TABLE materials ADD COLUMN supplied_at TIMESTAMP;
ALTER TABLE materials ADD COLUMN supplied_by TEXT;
ALTER TABLE materials ADD COLUMN received_at_window BOOLEAN NOT NULL DEFAULT FALSE;

-- Rectification cases closed without a contact must say why.
ALTER TABLE rectifications ADD COLUMN no_contact_reason TEXT;

-- New clock kinds, and the material a material clock watches. SQLite cannot change a CHECK
-- constraint in place: the table is rebuilt with the same columns and indexes.
CREATE TABLE clocks_new (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    task_id TEXT REFERENCES tasks (id),
    kind TEXT NOT NULL CHECK (kind IN ('window_intake', 'supplement_notice', 'promised',
        'statutory', 'delivery', 'rectification_contact', 'rectification', 'opinion', 'material',
        'on_the_spot', 'immediate')),
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
    lost_minutes BIGINT NOT NULL DEFAULT 0,
    material_id TEXT REFERENCES materials (id)
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
