-- Appointments (统一预约, docs/appointments.md): bookings of a counter's slot at the district
-- hall, and two tables of counters that let a conditional UPDATE under the database's own row
-- locks keep every limit when many instances book at once.

-- One row per booking. Enumerations are TEXT with a CHECK; times are UTC TIMESTAMPs made in
-- Rust; local_date and week (the slot's date and the Monday of its week, Asia/Shanghai) are
-- stored so that the per-day and per-week rules are plain equality on both backends.
CREATE TABLE appointments (
    id TEXT PRIMARY KEY NOT NULL,
    uscc TEXT NOT NULL,
    matter TEXT NOT NULL,
    unit TEXT NOT NULL,
    counter TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    local_date TEXT NOT NULL,
    week TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('booked', 'cancelled', 'checked_in', 'no_show')),
    contact_name TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    request_id TEXT,
    idempotency_key TEXT,
    body_sha256 TEXT,
    no_show_at TIMESTAMP NOT NULL,
    reminder_due_at TIMESTAMP,
    reminded_at TIMESTAMP,
    checked_in_at TIMESTAMP,
    checked_in_by TEXT,
    cancelled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    revision INTEGER NOT NULL
);
-- An Idempotency-Key names one booking of one enterprise (NULL keys do not collide).
CREATE UNIQUE INDEX appointments_idempotency ON appointments (uscc, idempotency_key);
-- One active booking per enterprise, matter and day: the database refuses a second even
-- when two instances race.
CREATE UNIQUE INDEX appointments_one_a_day ON appointments (uscc, matter, local_date)
    WHERE status IN ('booked', 'checked_in');
CREATE INDEX appointments_enterprise ON appointments (uscc, starts_at);
CREATE INDEX appointments_unit_day ON appointments (unit, local_date);
CREATE INDEX appointments_day ON appointments (local_date, unit, counter);
-- The worker's reads: what falls due, never a scan.
CREATE INDEX appointments_no_show_due ON appointments (no_show_at) WHERE status = 'booked';
CREATE INDEX appointments_reminder_due ON appointments (reminder_due_at)
    WHERE status = 'booked' AND reminded_at IS NULL;

-- Places taken per counter and slot. A booking adds one with
-- `UPDATE … SET booked = booked + 1 WHERE … AND booked < capacity`: the row lock makes
-- concurrent bookings of the last places queue, and each sees the count the one before it
-- committed, so a slot never takes more than its capacity.
CREATE TABLE appointment_slots (
    counter TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    unit TEXT NOT NULL,
    booked INTEGER NOT NULL CHECK (booked >= 0),
    PRIMARY KEY (counter, starts_at)
);

-- Bookings (not cancelled) per enterprise and week, kept the same way for the weekly limit.
CREATE TABLE appointment_weeks (
    uscc TEXT NOT NULL,
    week TEXT NOT NULL,
    active INTEGER NOT NULL CHECK (active >= 0),
    PRIMARY KEY (uscc, week)
);
