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
