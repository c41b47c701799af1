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

-- Clocks of rectification cases: contact the enterprise, then rectify.
ALTER TABLE clocks DROP CONSTRAINT clocks_kind_check;
ALTER TABLE clocks ADD CONSTRAINT clocks_kind_check CHECK (kind IN ('window_intake',
    'supplement_notice', 'promised', 'statutory', 'delivery', 'rectification_contact',
    'rectification'));
