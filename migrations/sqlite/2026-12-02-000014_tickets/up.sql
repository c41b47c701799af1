-- The window queue (docs/tickets.md): one row per ticket a visitor holds in a unit's queue in
-- the district hall. Numbers run per unit per day (`A017`: the unit's letter and the day's
-- sequence); `(unit, day, seq)` is unique, so two instances issuing at once can never hand out
-- the same number (the loser of a race takes the next one).
CREATE TABLE tickets (
    id TEXT PRIMARY KEY NOT NULL,
    unit TEXT NOT NULL,
    day TEXT NOT NULL,
    seq INTEGER NOT NULL,
    number TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('appointment', 'walk_in')),
    appointment_id TEXT,
    request_id TEXT REFERENCES requests (id),
    uscc TEXT,
    matter TEXT,
    counter TEXT,
    slot_start TIMESTAMP,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'called', 'done', 'no_answer')),
    issued_at TIMESTAMP NOT NULL,
    issued_by TEXT NOT NULL,
    called_at TIMESTAMP,
    called_by TEXT,
    called_counter TEXT,
    finished_at TIMESTAMP,
    revision INTEGER NOT NULL,
    UNIQUE (unit, day, seq)
);
CREATE INDEX tickets_queue ON tickets (unit, day, state);
CREATE INDEX tickets_called ON tickets (called_at) WHERE called_at IS NOT NULL;
CREATE INDEX tickets_request ON tickets (request_id) WHERE request_id IS NOT NULL;
