//! The portable schema: types both backends share (TEXT ids, UTC `TIMESTAMP`s, TEXT enums).
//! Kept by hand in step with `migrations/sqlite` and `migrations/postgres`; the
//! `schema_parity` integration test checks that both migration sets agree.

diesel::table! {
    /// Server processes that ran against this database.
    service_instances (id) {
        /// UUID v7.
        id -> Text,
        /// Host the process ran on.
        hostname -> Text,
        /// Operating-system process id.
        pid -> BigInt,
        /// Crate version of the binary.
        version -> Text,
        /// When it started serving (UTC).
        started_at -> Timestamp,
        /// When it stopped gracefully (UTC); NULL while running or after a crash.
        stopped_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Catalog versions (content hashes) that routing decisions refer to.
    catalog_versions (version) {
        /// SHA-256 of the catalog file.
        version -> Text,
        /// Number of matters.
        matters -> Integer,
        /// Number of bundles.
        bundles -> Integer,
        /// When a server first loaded it.
        first_loaded_at -> Timestamp,
    }
}

diesel::table! {
    /// Enterprise requests (办件).
    requests (id) {
        /// UUID v7.
        id -> Text,
        /// Human number, unique in the district: `PT20261127-000123`.
        number -> Text,
        /// The submitting enterprise.
        uscc -> Text,
        /// The enterprise's name as submitted.
        applicant_name -> Text,
        /// `matter` or `bundle`.
        kind -> Text,
        /// Matter or bundle code.
        code -> Text,
        /// Channel of intake.
        channel -> Text,
        /// Region of intake for cross-region requests.
        intake_region -> Nullable<Text>,
        /// Where the enterprise hears about the request.
        contact_email -> Text,
        /// The submitted form, as JSON text.
        form -> Text,
        /// Notification-commitment (告知承诺) chosen.
        commitment -> Bool,
        /// Lifecycle state.
        status -> Text,
        /// The one feedback point.
        lead_unit -> Text,
        /// Catalog version at intake.
        catalog_version -> Text,
        /// Optimistic-concurrency revision (the ETag).
        revision -> Integer,
        /// Intake time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
        /// A special procedure (Art. 45) is under way.
        special_procedure -> Bool,
        /// The one statutory extension was granted.
        extended -> Bool,
        /// When the request was deemed accepted from receipt because the supplement notice
        /// ran out (Art. 32), UTC.
        deemed_accepted_at -> Nullable<Timestamp>,
        /// `approval` or `denial`: what was delivered.
        result_kind -> Nullable<Text>,
        /// Certificate or decision number delivered.
        certificate -> Nullable<Text>,
        /// When the result was delivered (UTC).
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// One task per responsible unit (and matter) of a request.
    tasks (id) {
        /// UUID v7.
        id -> Text,
        /// The request.
        request_id -> Text,
        /// Responsible unit.
        unit -> Text,
        /// Matter handled (the bundle code for a coordinator task).
        matter_code -> Text,
        /// Category of that matter.
        category -> Text,
        /// `lead`, `co` or `coordinator`.
        role -> Text,
        /// Lifecycle state of the task.
        status -> Text,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Clerk (token subject) who took it from the queue.
        claimed_by -> Nullable<Text>,
        /// When it was taken (UTC).
        claimed_at -> Nullable<Timestamp>,
        /// A special procedure is under way on this task (bundles).
        special_procedure -> Bool,
        /// An opinion task's opinion: `agree`, `agree_with_conditions` or `disagree`.
        opinion -> Nullable<Text>,
        /// The opinion's note (the conditions, or why not).
        opinion_note -> Nullable<Text>,
        /// Who gave the opinion (token subject).
        opinion_by -> Nullable<Text>,
        /// When the opinion was given (UTC).
        opinion_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Materials declared with a request, or pending (容缺).
    materials (id) {
        /// UUID v7.
        id -> Text,
        /// The request.
        request_id -> Text,
        /// The matter asking for it.
        matter_code -> Text,
        /// Material code in the catalog.
        code -> Text,
        /// Name as declared (or the catalog name when pending).
        name -> Text,
        /// SHA-256 of the file, hex.
        sha256 -> Nullable<Text>,
        /// Size of the file in bytes.
        size_bytes -> Nullable<BigInt>,
        /// `provided` or `pending`.
        status -> Text,
        /// When a pending material is due (UTC).
        due_at -> Nullable<Timestamp>,
        /// When a deferred material was supplied (UTC).
        supplied_at -> Nullable<Timestamp>,
        /// Who supplied or recorded it (token subject).
        supplied_by -> Nullable<Text>,
        /// Received at the window (recorded by a clerk) rather than uploaded online.
        received_at_window -> Bool,
    }
}

diesel::table! {
    /// SLA clocks of requests and tasks.
    clocks (id) {
        /// UUID v7.
        id -> Text,
        /// The request.
        request_id -> Text,
        /// The task, for per-unit clocks of a bundle.
        task_id -> Nullable<Text>,
        /// Clock kind.
        kind -> Text,
        /// Target as published (`PT20M`, `20 working_days`).
        target -> Text,
        /// State.
        state -> Text,
        /// When it started (UTC).
        started_at -> Nullable<Timestamp>,
        /// When it falls due (UTC).
        due_at -> Nullable<Timestamp>,
        /// The unit it counts against.
        unit -> Text,
        /// The matter (or bundle) it counts for.
        matter -> Text,
        /// When the warning share of the target is reached (UTC).
        warn_at -> Nullable<Timestamp>,
        /// When the warning was marked (UTC).
        warned_at -> Nullable<Timestamp>,
        /// Next instant the detection worker looks at it (UTC); NULL when nothing is left.
        check_at -> Nullable<Timestamp>,
        /// When it was marked breached (UTC).
        breached_at -> Nullable<Timestamp>,
        /// When it stopped: met, breached and stopped, or cancelled (UTC).
        stopped_at -> Nullable<Timestamp>,
        /// Start of the open pause (UTC).
        paused_at -> Nullable<Timestamp>,
        /// Total wall-clock seconds paused.
        paused_seconds -> BigInt,
        /// Every pause with its reason, JSON list.
        pauses -> Text,
        /// Counting restarted here after the last pause (UTC).
        resumed_at -> Nullable<Timestamp>,
        /// (Working) seconds left at the last pause.
        remaining_seconds -> Nullable<BigInt>,
        /// Working days added by the extension.
        extended_days -> Integer,
        /// Handling time in working minutes when stopped, pauses excluded.
        worked_minutes -> Nullable<BigInt>,
        /// The unit that returned the request (退单), charged with the lost time.
        lost_to_unit -> Nullable<Text>,
        /// Working minutes lost to a return.
        lost_minutes -> BigInt,
        /// The deferred material a `material` clock watches.
        material_id -> Nullable<Text>,
    }
}

diesel::table! {
    /// Days administrators set or removed at runtime; they win over the calendar file.
    calendar_days (calendar, day) {
        /// Calendar code.
        calendar -> Text,
        /// `YYYY-MM-DD`.
        day -> Text,
        /// `holiday`, `working_day` or `regular` (the file's override removed).
        kind -> Text,
        /// Who changed it (token subject).
        changed_by -> Text,
        /// When (UTC).
        changed_at -> Timestamp,
    }
}

diesel::table! {
    /// Why a request went where it went.
    routing_decisions (id) {
        /// UUID v7.
        id -> Text,
        /// The request.
        request_id -> Text,
        /// Catalog version applied.
        catalog_version -> Text,
        /// `intake` or `reroute`.
        reason -> Text,
        /// The explanation, as JSON text.
        explanation -> Text,
        /// When (UTC).
        decided_at -> Timestamp,
    }
}

diesel::table! {
    /// Idempotency keys of intake, per enterprise.
    idempotency_keys (uscc, idempotency_key) {
        /// Enterprise.
        uscc -> Text,
        /// The client's `Idempotency-Key`.
        idempotency_key -> Text,
        /// SHA-256 of the canonical request body.
        body_sha256 -> Text,
        /// The request created.
        request_id -> Text,
        /// Status of the first response.
        status_code -> Integer,
        /// Body of the first response.
        response_body -> Text,
        /// When (UTC).
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Last request number used per day.
    request_counters (day) {
        /// `YYYYMMDD` in the district's time zone.
        day -> Text,
        /// Last sequence number.
        last_number -> Integer,
    }
}

diesel::table! {
    /// The outbox: one mail per row, written in the transaction of the change that causes it.
    notifications (id) {
        /// UUID v7.
        id -> Text,
        /// The request it is about, if any.
        request_id -> Nullable<Text>,
        /// What it says (`accepted`, `clock_breached`, …).
        kind -> Text,
        /// The address it goes to.
        recipient -> Text,
        /// Subject line.
        subject -> Text,
        /// Plain-text body, Chinese first, English second.
        body -> Text,
        /// Deterministic `Message-ID`, the same on every attempt.
        message_id -> Text,
        /// `pending`, `sent` or `dead`.
        status -> Text,
        /// Delivery attempts made.
        attempts -> Integer,
        /// When the next attempt is due (UTC).
        next_attempt_at -> Timestamp,
        /// A sender holds it until then (UTC).
        locked_until -> Nullable<Timestamp>,
        /// What went wrong last.
        last_error -> Nullable<Text>,
        /// When it was written (UTC).
        created_at -> Timestamp,
        /// When the SMTP server accepted it (UTC).
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Good/bad ratings (好差评), one per request.
    ratings (request_id) {
        /// The request.
        request_id -> Text,
        /// The enterprise that rated.
        uscc -> Text,
        /// 1 (非常不满意) to 5 (非常满意).
        level -> Integer,
        /// What the enterprise wrote.
        comment -> Text,
        /// The unit rated (the request's lead unit).
        unit -> Text,
        /// The matter or bundle code.
        matter -> Text,
        /// When (UTC).
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Rectification cases (整改) opened by a bad rating.
    rectifications (id) {
        /// UUID v7.
        id -> Text,
        /// The request rated.
        request_id -> Text,
        /// The unit that must rectify.
        unit -> Text,
        /// The rating's level.
        level -> Integer,
        /// `open`, `contacted` or `closed`.
        status -> Text,
        /// When the unit contacted the enterprise (UTC).
        contacted_at -> Nullable<Timestamp>,
        /// What the contact found.
        contact_note -> Nullable<Text>,
        /// When it was closed (UTC).
        closed_at -> Nullable<Timestamp>,
        /// What was rectified.
        closing_note -> Nullable<Text>,
        /// When it was opened (UTC).
        created_at -> Timestamp,
        /// Revision for ETags.
        revision -> Integer,
        /// Why the case was closed without a recorded contact.
        no_contact_reason -> Nullable<Text>,
    }
}

diesel::joinable!(tasks -> requests (request_id));
diesel::joinable!(materials -> requests (request_id));
diesel::joinable!(clocks -> requests (request_id));
diesel::joinable!(routing_decisions -> requests (request_id));
diesel::joinable!(ratings -> requests (request_id));
diesel::joinable!(rectifications -> requests (request_id));

diesel::table! {
    /// The hash-chained audit trail (append-only).
    audit_events (seq) {
        /// Position in the chain, from 1.
        seq -> BigInt,
        /// The request concerned.
        request_id -> Text,
        /// Token subject of the actor.
        actor -> Text,
        /// Role of the actor.
        role -> Text,
        /// Unit of the actor.
        unit -> Nullable<Text>,
        /// What happened.
        action -> Text,
        /// State before.
        state_before -> Nullable<Text>,
        /// State after.
        state_after -> Nullable<Text>,
        /// Details, as JSON text.
        payload -> Text,
        /// When (UTC).
        at -> Timestamp,
        /// Hash of the previous event.
        prev_hash -> Text,
        /// This event's hash.
        hash -> Text,
    }
}

diesel::table! {
    /// Rate-limit counters shared by every instance: one row per bucket.
    rate_limits (bucket) {
        /// `enterprise:<uscc>`, `official:<subject>` or `address:<client address>`.
        bucket -> Text,
        /// Start of the fixed window counted in, Unix seconds.
        window_start -> BigInt,
        /// Requests counted in that window.
        hits -> BigInt,
    }
}

diesel::table! {
    /// Appointments at the district hall (统一预约).
    appointments (id) {
        /// UUID v7.
        id -> Text,
        /// The enterprise.
        uscc -> Text,
        /// Matter code.
        matter -> Text,
        /// The counter's unit.
        unit -> Text,
        /// Counter code.
        counter -> Text,
        /// Slot start (UTC).
        starts_at -> Timestamp,
        /// Slot end (UTC).
        ends_at -> Timestamp,
        /// The slot's local date, `YYYY-MM-DD`.
        local_date -> Text,
        /// Monday of the slot's week, `YYYY-MM-DD`.
        week -> Text,
        /// `booked`, `cancelled`, `checked_in`, `no_show`.
        status -> Text,
        /// Contact name.
        contact_name -> Text,
        /// Contact phone.
        contact_phone -> Text,
        /// Contact e-mail.
        contact_email -> Text,
        /// The request it is for, if any.
        request_id -> Nullable<Text>,
        /// `Idempotency-Key` it was booked with.
        idempotency_key -> Nullable<Text>,
        /// SHA-256 of the booking body, for the key.
        body_sha256 -> Nullable<Text>,
        /// When it becomes a no-show (UTC).
        no_show_at -> Timestamp,
        /// When the reminder is due (UTC); NULL: none.
        reminder_due_at -> Nullable<Timestamp>,
        /// When the reminder was written to the outbox (UTC).
        reminded_at -> Nullable<Timestamp>,
        /// Checked in (UTC).
        checked_in_at -> Nullable<Timestamp>,
        /// The clerk who checked it in.
        checked_in_by -> Nullable<Text>,
        /// Cancelled (UTC).
        cancelled_at -> Nullable<Timestamp>,
        /// Booked (UTC).
        created_at -> Timestamp,
        /// Last changed (UTC).
        updated_at -> Timestamp,
        /// Revision, the `ETag`.
        revision -> Integer,
    }
}

diesel::table! {
    /// Places taken per counter and slot.
    appointment_slots (counter, starts_at) {
        /// Counter code.
        counter -> Text,
        /// Slot start (UTC).
        starts_at -> Timestamp,
        /// The counter's unit.
        unit -> Text,
        /// Places taken.
        booked -> Integer,
    }
}

diesel::table! {
    /// Bookings (not cancelled) per enterprise and week.
    appointment_weeks (uscc, week) {
        /// The enterprise.
        uscc -> Text,
        /// Monday of the week, `YYYY-MM-DD`.
        week -> Text,
        /// Bookings held.
        active -> Integer,
    }
}

diesel::table! {
    /// 帮办 grants: an enterprise authorises an official or a unit's desk (docs/assisted-filing.md).
    authorizations (id) {
        /// UUID v7.
        id -> Text,
        /// The granting enterprise.
        uscc -> Text,
        /// The named official's token subject (else a desk).
        official -> Nullable<Text>,
        /// The unit whose 帮办 desk (every clerk) is named (else an official).
        desk_unit -> Nullable<Text>,
        /// The one request covered (else a period).
        request_id -> Nullable<Text>,
        /// Period start (UTC, inclusive).
        valid_from -> Nullable<Timestamp>,
        /// Period end (UTC, exclusive).
        valid_until -> Nullable<Timestamp>,
        /// 领导干部帮办.
        leader -> Bool,
        /// Token subject of the enterprise that granted it.
        granted_by -> Text,
        /// When granted (UTC).
        created_at -> Timestamp,
        /// When revoked (UTC).
        revoked_at -> Nullable<Timestamp>,
        /// Who revoked it.
        revoked_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// Each enterprise step an official took for an enterprise (walk-in or under a grant).
    assisted_acts (id) {
        /// UUID v7.
        id -> Text,
        /// The request.
        request_id -> Text,
        /// The enterprise acted for.
        uscc -> Text,
        /// `intake`, `supplement` or `withdraw`.
        action -> Text,
        /// The official's token subject.
        official -> Text,
        /// `clerk` or `supervisor`.
        role -> Text,
        /// The official's unit.
        unit -> Nullable<Text>,
        /// The grant it was taken under (none for a walk-in filing).
        authorization_id -> Nullable<Text>,
        /// Taken under a leader grant (领导干部帮办).
        leader -> Bool,
        /// A walk-in filing's identity check: `id_card`, `e_license` or `face`.
        identity_method -> Nullable<Text>,
        /// The name the identity check confirmed.
        verified_name -> Nullable<Text>,
        /// When (UTC).
        at -> Timestamp,
    }
}

diesel::joinable!(assisted_acts -> requests (request_id));

diesel::table! {
    /// The window queue: tickets visitors hold in a unit's queue in the hall (docs/tickets.md).
    tickets (id) {
        /// UUID v7.
        id -> Text,
        /// The unit whose queue it is in.
        unit -> Text,
        /// `YYYYMMDD` in the district's time zone: numbers run per unit per day.
        day -> Text,
        /// The day's sequence number in the unit, from 1.
        seq -> Integer,
        /// What the visitor sees: the unit's letter and the sequence, `A017`.
        number -> Text,
        /// `appointment` or `walk_in`.
        kind -> Text,
        /// The appointment checked in (appointment tickets).
        appointment_id -> Nullable<Text>,
        /// The request the visit is about, once known.
        request_id -> Nullable<Text>,
        /// The enterprise, when known.
        uscc -> Nullable<Text>,
        /// The matter, when known.
        matter -> Nullable<Text>,
        /// The counter (window) it is meant for, if any.
        counter -> Nullable<Text>,
        /// The booked slot's start (appointment tickets), UTC.
        slot_start -> Nullable<Timestamp>,
        /// `waiting`, `called`, `done` or `no_answer`.
        state -> Text,
        /// Check-in (UTC).
        issued_at -> Timestamp,
        /// Who issued it (token subject).
        issued_by -> Text,
        /// When it was called (UTC).
        called_at -> Nullable<Timestamp>,
        /// Who called it (token subject).
        called_by -> Nullable<Text>,
        /// The counter it was called to.
        called_counter -> Nullable<Text>,
        /// When it was marked done or not answered (UTC).
        finished_at -> Nullable<Timestamp>,
        /// Optimistic-concurrency revision.
        revision -> Integer,
    }
}

diesel::table! {
    /// The statistics' rollup of stopped clocks: one row per Shanghai day of `stopped_at`,
    /// unit, matter and kind (`migrations/*/2026-12-05-000016_sla_rollups`, handling times
    /// since `2026-12-07-000020_rollup_histograms`).
    clock_rollups (day, unit, matter, kind) {
        /// Shanghai calendar day of `stopped_at`, `YYYY-MM-DD`.
        day -> Text,
        /// The unit the clocks count against.
        unit -> Text,
        /// Matter or bundle code.
        matter -> Text,
        /// Clock kind.
        kind -> Text,
        /// Clocks stopped that day.
        counted -> BigInt,
        /// Of them, met (state `met`, no breach time).
        met -> BigInt,
        /// Of them, with a breach time.
        breached -> BigInt,
        /// The rest (cancelled).
        cancelled -> BigInt,
        /// Sum of their `lost_minutes`.
        lost_minutes -> BigInt,
        /// Their handling times (`domain::handling_time`: `minutes:clocks` pairs).
        worked -> Text,
    }
}

diesel::table! {
    /// The same as `clock_rollups`, per Shanghai calendar month (`YYYY-MM`).
    clock_rollup_months (month, unit, matter, kind) {
        /// Shanghai calendar month of `stopped_at`, `YYYY-MM`.
        month -> Text,
        /// The unit the clocks count against.
        unit -> Text,
        /// Matter or bundle code.
        matter -> Text,
        /// Clock kind.
        kind -> Text,
        /// Clocks stopped that month.
        counted -> BigInt,
        /// Of them, met (state `met`, no breach time).
        met -> BigInt,
        /// Of them, with a breach time.
        breached -> BigInt,
        /// The rest (cancelled).
        cancelled -> BigInt,
        /// Sum of their `lost_minutes`.
        lost_minutes -> BigInt,
        /// Their handling times (`domain::handling_time`: `minutes:clocks` pairs).
        worked -> Text,
    }
}

diesel::table! {
    /// Ratings per Shanghai day of `created_at`, rated unit, matter and level.
    rating_rollups (day, unit, matter, level) {
        /// Shanghai calendar day of `created_at`, `YYYY-MM-DD`.
        day -> Text,
        /// The unit rated.
        unit -> Text,
        /// Matter or bundle code.
        matter -> Text,
        /// 1 to 5.
        level -> Integer,
        /// How many.
        ratings -> BigInt,
    }
}

diesel::table! {
    /// Ratings per Shanghai calendar month (`YYYY-MM`), rated unit, matter and level.
    rating_rollup_months (month, unit, matter, level) {
        /// Shanghai calendar month of `created_at`, `YYYY-MM`.
        month -> Text,
        /// The unit rated.
        unit -> Text,
        /// Matter or bundle code.
        matter -> Text,
        /// 1 to 5.
        level -> Integer,
        /// How many.
        ratings -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    requests,
    tasks,
    materials,
    clocks,
    routing_decisions,
    idempotency_keys,
    request_counters,
    catalog_versions,
    service_instances,
    audit_events,
    calendar_days,
    notifications,
    ratings,
    rectifications,
    appointments,
    appointment_slots,
    appointment_weeks,
    authorizations,
    assisted_acts,
    tickets,
    clock_rollups,
    clock_rollup_months,
    rating_rollups,
    rating_rollup_months,
);
