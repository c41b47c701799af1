//! The statements of intake's serialised transaction are prepared once per connection and
//! kept (diesel's statement cache), not parsed and planned again on every request: on
//! PostgreSQL the same transaction runs at about half the rate unprepared (issue 18).
//!
//! diesel reports each statement it puts into a connection's cache (`CacheQuery`); a statement
//! it cannot cache (an `UPDATE`, SQL text, an `INSERT` whose columns vary with `None` values)
//! is never reported. Collected here from every connection the process opens.

use std::collections::BTreeSet;
use std::sync::Mutex;

use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};

/// The SQL of every statement any connection of this process cached.
static CACHED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

struct Recorder;

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::CacheQuery { sql, .. } = event {
            CACHED.lock().unwrap().insert(sql.to_owned());
        }
    }
}

fn recorder() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(Recorder))
}

/// Every write of intake but the day's counter (an `UPDATE`, which diesel never caches) is a
/// cached statement on PostgreSQL: the request, task, material, clock and routing rows, the
/// audit chain's lock, head and event.
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
async fn intake_runs_on_prepared_statements() {
    set_default_instrumentation(recorder).unwrap();
    let app = crate::helpers::spawn_postgres()
        .await
        .expect("MASHANGBAN_TEST_DATABASE_URL is set");
    crate::helpers::submit(&app, &crate::requests::matter_body("tax.registration")).await;
    let cached = CACHED.lock().unwrap().clone();
    for table in [
        "requests",
        "tasks",
        "materials",
        "clocks",
        "routing_decisions",
        "audit_events",
    ] {
        let insert = format!("INSERT INTO \"{table}\"");
        assert!(
            cached.iter().any(|sql| sql.starts_with(&insert)),
            "the INSERT into {table} is not a cached statement; cached: {cached:#?}"
        );
    }
    assert!(
        cached
            .iter()
            .any(|sql| sql.contains("pg_advisory_xact_lock")),
        "the audit chain's lock is not a cached statement"
    );
}
