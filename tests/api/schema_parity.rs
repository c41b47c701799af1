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
