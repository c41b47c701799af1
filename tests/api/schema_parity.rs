//! `migrations/sqlite` and `migrations/postgres` describe the same tables and columns.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use mashangban::db::{self, DatabaseUrl, DbConnection};

use crate::helpers;

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Integer)]
    not_null: i32,
}

/// A column's portable description: type family and nullability.
type Shape = BTreeMap<(String, String), (String, bool)>;

/// Maps each backend's type names onto the families the portable schema uses.
fn family(data_type: &str) -> String {
    let t = data_type.to_ascii_lowercase();
    let family = if t.contains("timestamp") {
        "timestamp"
    } else if t.contains("bigint") || t == "int8" {
        "bigint"
    } else if t.contains("int") {
        "integer"
    } else if t.contains("bool") {
        "boolean"
    } else if t.contains("text") || t.contains("char") {
        "text"
    } else if t.contains("double") || t.contains("real") || t.contains("float") {
        "float"
    } else if t.contains("bytea") || t.contains("blob") {
        "binary"
    } else {
        t.as_str()
    };
    family.to_string()
}

fn shape(url: &str) -> Shape {
    let settings = helpers::test_settings(url);
    let url = DatabaseUrl::parse(url).unwrap();
    let mut conn = db::establish(&url, &settings.database).unwrap();
    db::migrate(&mut conn, &url).unwrap();
    let query = match conn {
        DbConnection::Sqlite(_) => {
            "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type, \
             CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 1 ELSE 0 END AS not_null \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'"
        }
        DbConnection::Pg(_) => {
            "SELECT table_name::text, column_name::text, data_type::text, \
             CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS not_null \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> '__diesel_schema_migrations'"
        }
    };
    diesel::sql_query(query)
        .load::<Column>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                (c.table_name, c.column_name),
                (family(&c.data_type), c.not_null == 1),
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
fn sqlite_and_postgres_schemas_agree() {
    let (_dir, sqlite_url) = helpers::fresh_sqlite();
    let sqlite = shape(&sqlite_url);
    assert!(sqlite.contains_key(&("service_instances".into(), "started_at".into())));
    let (admin_url, name, pg_url) = helpers::fresh_postgres().expect("PostgreSQL configured");
    let postgres = shape(&pg_url);
    let mut admin = PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
    assert_eq!(sqlite, postgres);
}

/// Both migration folders hold the same migrations, by name.
#[test]
fn migration_folders_match() {
    let names = |backend: &str| {
        let mut names: Vec<String> = std::fs::read_dir(format!(
            "{}/migrations/{backend}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
        names.sort();
        names
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

#[derive(QueryableByName, Debug)]
struct Reference {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// The foreign-key columns of the SQLite schema; with `unindexed`, only those that lead no index.
fn foreign_keys(conn: &mut DbConnection, unindexed: bool) -> Vec<Reference> {
    let index_led = "EXISTS (SELECT 1 FROM pragma_index_list(m.name) l \
                     JOIN pragma_index_info(l.name) i WHERE i.seqno = 0 AND i.name = f.\"from\")";
    let condition = if unindexed {
        format!("AND NOT {index_led}")
    } else {
        String::new()
    };
    diesel::sql_query(format!(
        "SELECT m.name AS table_name, f.\"from\" AS column_name \
         FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' {condition}"
    ))
    .load::<Reference>(conn)
    .unwrap()
}

/// Every foreign-key column leads an index. Without one, inserting or deleting a parent row
/// makes SQLite search the whole child table for references (with a deferred key, on every
/// intake): `idempotency_keys.request_id` did, and keyed intake slowed as the keys piled up.
#[test]
fn every_foreign_key_leads_an_index() {
    let (_dir, url) = helpers::fresh_sqlite();
    let settings = helpers::test_settings(&url);
    let url = DatabaseUrl::parse(&url).unwrap();
    let mut conn = db::establish(&url, &settings.database).unwrap();
    db::migrate(&mut conn, &url).unwrap();
    // The query sees the keys at all (the schema has more than a dozen).
    assert!(foreign_keys(&mut conn, false).len() > 10);
    // Catalog versions are written once per published catalog and never deleted, and never
    // while a deferred reference is outstanding: no search of the children ever happens, so the
    // two largest tables carry no index for them.
    let exempt = [
        ("requests", "catalog_version"),
        ("routing_decisions", "catalog_version"),
    ];
    let missing: Vec<Reference> = foreign_keys(&mut conn, true)
        .into_iter()
        .filter(|r| !exempt.contains(&(r.table_name.as_str(), r.column_name.as_str())))
        .collect();
    assert!(
        missing.is_empty(),
        "foreign keys without an index: {missing:?}"
    );
}

/// A new SQLite connection gathers the planner's statistics of a table that has grown
/// (`PRAGMA optimize` as it opens): without them SQLite chose the wrong index for the queue.
#[test]
fn sqlite_connections_keep_the_planner_statistics() {
    let (_dir, url) = helpers::fresh_sqlite();
    let settings = helpers::test_settings(&url);
    let url = DatabaseUrl::parse(&url).unwrap();
    let mut conn = db::establish(&url, &settings.database).unwrap();
    db::migrate(&mut conn, &url).unwrap();
    let analyzed = |conn: &mut DbConnection| -> usize {
        diesel::sql_query(
            "SELECT tbl AS table_name, idx AS column_name FROM sqlite_stat1 \
             WHERE tbl = 'rate_limits'",
        )
        .load::<Reference>(conn)
        .map(|rows| rows.len())
        .unwrap_or(0)
    };
    assert_eq!(analyzed(&mut conn), 0);
    diesel::sql_query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
         INSERT INTO rate_limits (bucket, window_start, hits) SELECT 'b' || i, i, 1 FROM n",
    )
    .execute(&mut conn)
    .unwrap();
    drop(conn);
    let mut fresh = db::establish(&url, &settings.database).unwrap();
    assert!(analyzed(&mut fresh) > 0, "no statistics for rate_limits");
}
