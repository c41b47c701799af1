-- The SLA engine: what a clock needs to pause, resume, extend, warn and breach exactly once;
-- per-task special procedures of a bundle; and runtime changes to the working calendars.

-- Who and what a clock counts against, copied from the request or task so that supervisors'
-- queries over a million requests read one table through an index.
ALTER TABLE clocks ADD COLUMN unit TEXT NOT NULL DEFAULT '';
ALTER TABLE clocks ADD COLUMN matter TEXT NOT NULL DEFAULT '';
-- When the warning share of the target is reached, and when it was marked.
ALTER TABLE clocks ADD COLUMN warn_at TIMESTAMP;
ALTER TABLE clocks ADD COLUMN warned_at TIMESTAMP;
-- The next instant the detection worker must look at this clock (warning, then due);
-- NULL when nothing is left to detect. The worker reads it through clocks_check_at.
ALTER TABLE clocks ADD COLUMN check_at TIMESTAMP;
ALTER TABLE clocks ADD COLUMN breached_at TIMESTAMP;
ALTER TABLE clocks ADD COLUMN stopped_at TIMESTAMP;
-- Pauses: the open one, the total, and every pause with its reason (JSON list).
ALTER TABLE clocks ADD COLUMN paused_at TIMESTAMP;
ALTER TABLE clocks ADD COLUMN paused_seconds BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clocks ADD COLUMN pauses TEXT NOT NULL DEFAULT '[]';
-- After a resume: counting restarted at resumed_at with remaining_seconds of (working) time.
ALTER TABLE clocks ADD COLUMN resumed_at TIMESTAMP;
ALTER TABLE clocks ADD COLUMN remaining_seconds BIGINT;
-- Working days added by an approved extension (Art. 42), once.
ALTER TABLE clocks ADD COLUMN extended_days INTEGER NOT NULL DEFAULT 0;
-- Handling time in working minutes, pauses excluded, when the clock stopped.
ALTER TABLE clocks ADD COLUMN worked_minutes BIGINT;
-- A return (退单): the unit that returned it and the working minutes lost to it.
ALTER TABLE clocks ADD COLUMN lost_to_unit TEXT;
ALTER TABLE clocks ADD COLUMN lost_minutes BIGINT NOT NULL DEFAULT 0;

UPDATE clocks SET unit = (SELECT lead_unit FROM requests WHERE requests.id = clocks.request_id),
                  matter = (SELECT code FROM requests WHERE requests.id = clocks.request_id);
UPDATE clocks SET unit = (SELECT unit FROM tasks WHERE tasks.id = clocks.task_id),
                  matter = (SELECT matter_code FROM tasks WHERE tasks.id = clocks.task_id)
    WHERE task_id IS NOT NULL;
UPDATE clocks SET check_at = due_at WHERE state = 'running';

CREATE INDEX clocks_check_at ON clocks (check_at) WHERE check_at IS NOT NULL;
CREATE INDEX clocks_breached ON clocks (breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX clocks_unit_breached ON clocks (unit, breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX clocks_open_due ON clocks (due_at) WHERE stopped_at IS NULL AND state = 'running';
CREATE INDEX clocks_stopped ON clocks (stopped_at) WHERE stopped_at IS NOT NULL;

-- A special procedure on one unit task of a bundle.
ALTER TABLE tasks ADD COLUMN special_procedure BOOLEAN NOT NULL DEFAULT FALSE;

-- Requests deemed accepted from receipt when the supplement notice ran out (Art. 32).
ALTER TABLE requests ADD COLUMN deemed_accepted_at TIMESTAMP;

-- Days set or removed by administrators at runtime; they win over the calendar file.
-- kind: holiday, working_day, or regular (the file's override removed: the weekday decides).
CREATE TABLE calendar_days (
    calendar TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'working_day', 'regular')),
    changed_by TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (calendar, day)
);
