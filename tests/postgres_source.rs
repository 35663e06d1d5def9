//! The postgres source against a real PostgreSQL 15 the harness starts: round trips in every
//! format, the force rule, and pg_dump failures that must surface with pg_dump's message.

#[path = "support/library.rs"]
mod library;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use library::PgSources;
use planrun::plan::{PgFormat, Source};
use planrun::source::{RestoreOutcome, RestoreTarget, SourceError};
use planrun::storage::{LocalStore, SetSummary, Store};
use support::postgres::{BIN_DIR, PASSWORD, PgServer};

const TABLES: [&str; 3] = ["auth_user", "customers_customer", "sales_sale"];

fn seed(pg: &PgServer, database: &str) {
    pg.psql("postgres", &format!("CREATE DATABASE {database}"));
    pg.psql(
        database,
        "CREATE TABLE auth_user (id serial PRIMARY KEY, username text NOT NULL);
         CREATE TABLE customers_customer (id serial PRIMARY KEY, name text, email text);
         CREATE TABLE sales_sale (id serial PRIMARY KEY, customer_id int REFERENCES customers_customer(id), amount numeric(10,2));
         INSERT INTO auth_user (username) SELECT 'user' || g FROM generate_series(1, 25) g;
         INSERT INTO customers_customer (name, email) SELECT 'Cliente ' || g, 'c' || g || '@example.com' FROM generate_series(1, 300) g;
         INSERT INTO sales_sale (customer_id, amount) SELECT 1 + g % 300, (g * 7 % 1000) / 3.0 FROM generate_series(1, 2000) g;",
    );
}

/// Row count plus an md5 over the table's rows in order: equal means equal content.
fn fingerprint(pg: &PgServer, database: &str) -> Vec<String> {
    TABLES
        .iter()
        .map(|t| pg.psql(database, &format!("SELECT count(*) || ':' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM {t} x")))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Restores source `db` of plan `crm` from the set `selector` names into `database`.
fn restore_db(
    store: &Store,
    source: &Source,
    selector: &str,
    database: &str,
    force: bool,
    scratch: &Path,
) -> Result<(SetSummary, RestoreOutcome), SourceError> {
    runtime().block_on(planrun::storage::restore_source(
        store,
        "crm",
        "db",
        source,
        Some(selector),
        RestoreTarget {
            database: Some(database.into()),
            path: None,
            force,
        },
        scratch,
    ))
}

#[test]
fn every_format_round_trips_with_facts_and_force_rules() {
    let pg = PgServer::start();
    seed(&pg, "crm");
    let expected = fingerprint(&pg, "crm");
    let work = tempfile::tempdir().unwrap();
    for (format, target) in [
        (PgFormat::Custom, "crm_custom"),
        (PgFormat::Directory, "crm_dir"),
        (PgFormat::Plain, "crm_plain"),
    ] {
        let mut source = pg.source("crm");
        source.format = Some(format);
        source.jobs = Some(2);
        source.count_rows = TABLES.iter().map(|t| t.to_string()).collect();
        let source = Source::Postgres(source);
        let (writer, result) = library::back_up(
            &work.path().join("store"),
            "crm",
            "db",
            &source,
            work.path(),
        );
        let (backup, _) = result.unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let facts = &backup.artifacts[0].facts;
        assert_eq!(facts["row_counts"]["auth_user"], 25, "{facts:?}");
        assert_eq!(facts["row_counts"]["sales_sale"], 2000);
        assert!(
            facts["server_version"].as_str().unwrap().starts_with("15"),
            "{facts:?}"
        );
        assert!(
            facts["pg_dump_version"].as_str().unwrap().contains("15"),
            "{facts:?}"
        );

        let store = Store::new(LocalStore::new(work.path().join("store")));
        let (set, outcome) = restore_db(
            &store,
            &source,
            writer.id().as_str(),
            target,
            false,
            work.path(),
        )
        .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(&set.id, writer.id());
        assert_eq!(outcome.facts["row_counts"], facts["row_counts"]);
        assert_eq!(fingerprint(&pg, target), expected, "{format:?}");
    }

    // An existing database with data is replaced only with force, and then completely.
    pg.psql("crm_custom", "DELETE FROM sales_sale WHERE id > 10");
    let mut source = pg.source("crm");
    source.count_rows = TABLES.iter().map(|t| t.to_string()).collect();
    let source = Source::Postgres(source);
    let store = Store::new(LocalStore::new(work.path().join("store")));
    let refuse =
        restore_db(&store, &source, "latest", "crm_custom", false, work.path()).unwrap_err();
    assert!(
        refuse.to_string().starts_with(
            "refusing to replace database crm_custom: it exists with 3 tables and 0 connections"
        ),
        "{refuse}"
    );
    restore_db(&store, &source, "latest", "crm_custom", true, work.path()).unwrap();
    assert_eq!(fingerprint(&pg, "crm_custom"), expected);
    let leftovers = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname LIKE '%planrun%'",
    );
    assert_eq!(leftovers, "0");
}

#[test]
fn bad_password_and_missing_database_fail_with_the_server_message() {
    let pg = PgServer::start();
    seed(&pg, "crm");
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");

    let good = Source::Postgres(pg.tcp_source("crm", PASSWORD));
    let (_, result) = library::back_up(&store, "crm", "db", &good, work.path());
    result.expect("the right password works over TCP");

    let bad = Source::Postgres(pg.tcp_source("crm", "wrong"));
    let (writer, result) = library::back_up(&store, "crm", "db", &bad, work.path());
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("password authentication failed for user \"postgres\""),
        "{error}"
    );
    assert!(
        !error.contains("wrong"),
        "the password must not appear: {error}"
    );
    assert_eq!(
        support::names(writer.path()),
        Vec::<String>::new(),
        "no artifact, no temp file"
    );
    // The passfile lived in scratch only for the attempt.
    assert!(
        !support::names(work.path())
            .iter()
            .any(|n| n.starts_with("pgpass"))
    );

    let missing = Source::Postgres(pg.source("nope"));
    let (_, result) = library::back_up(&store, "crm", "db", &missing, work.path());
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("database \"nope\" does not exist"),
        "{error}"
    );
}

#[test]
fn a_pg_dump_failing_inside_the_pipeline_is_caught() {
    let pg = PgServer::start();
    seed(&pg, "crm");
    let work = tempfile::tempdir().unwrap();
    // A pg_dump that writes a plausible start of a dump, then dies: the compressor downstream
    // is perfectly happy, so only the producer's exit status can tell.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(format!("{BIN_DIR}/psql"), bin.join("psql")).unwrap();
    let fake = bin.join("pg_dump");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \"$1\" in --version) exec {BIN_DIR}/pg_dump --version;; esac\n\
             printf 'PGDMP partial dump bytes'\necho 'pg_dump: error: query failed: server closed the connection unexpectedly' >&2\nexit 1\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut source = pg.source("crm");
    source.bin_dir = Some(bin.display().to_string());
    let (writer, result) = library::back_up(
        &work.path().join("store"),
        "crm",
        "db",
        &Source::Postgres(source),
        work.path(),
    );
    match result {
        Err(SourceError::Tool {
            program, stderr, ..
        }) => {
            assert_eq!(program, "pg_dump");
            assert_eq!(
                stderr,
                "pg_dump: error: query failed: server closed the connection unexpectedly"
            );
        }
        other => panic!("expected a pg_dump failure, got {other:?}"),
    }
    assert_eq!(support::names(writer.path()), Vec::<String>::new());
}

/// The owner, grants (sorted), settings, connection limit and comment of `database`.
fn identity(pg: &PgServer, database: &str) -> Vec<String> {
    let db = format!("'{database}'");
    [
        format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {db}"),
        format!(
            "SELECT string_agg(x::text, ',' ORDER BY x::text) FROM pg_database d, unnest(d.datacl) x WHERE d.datname = {db}"
        ),
        format!(
            "SELECT string_agg(coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*') || ':' || array_to_string(s.setconfig, '|'), ' ' ORDER BY s.setrole) \
             FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = {db}"
        ),
        format!("SELECT datconnlimit FROM pg_database WHERE datname = {db}"),
        format!("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = {db}"),
    ]
    .iter()
    .map(|sql| pg.psql("postgres", sql))
    .collect()
}

#[test]
fn restore_force_keeps_the_owner_grants_and_settings_of_the_database_it_replaces() {
    let pg = PgServer::start();
    pg.psql(
        "postgres",
        "CREATE ROLE crm LOGIN; CREATE ROLE reader LOGIN",
    );
    pg.psql("postgres", "CREATE DATABASE crm OWNER crm");
    pg.psql(
        "crm",
        "CREATE SCHEMA crm AUTHORIZATION crm; CREATE TABLE crm.customers (id int); INSERT INTO crm.customers VALUES (1), (2)",
    );
    pg.psql(
        "postgres",
        "REVOKE ALL ON DATABASE crm FROM PUBLIC; GRANT CONNECT ON DATABASE crm TO reader; \
         GRANT TEMPORARY ON DATABASE crm TO reader WITH GRANT OPTION; \
         ALTER DATABASE crm SET search_path = crm, \"My Schema\", public; \
         ALTER DATABASE crm SET work_mem = '8MB'; \
         ALTER ROLE reader IN DATABASE crm SET statement_timeout = '5s'; \
         ALTER DATABASE crm CONNECTION LIMIT 50; COMMENT ON DATABASE crm IS 'the CRM''s data'",
    );
    let before = identity(&pg, "crm");
    assert_eq!(
        before,
        [
            "crm",
            "crm=CTc/crm,reader=T*c/crm",
            "*:search_path=crm, \"My Schema\", public|work_mem=8MB reader:statement_timeout=5s",
            "50",
            "the CRM's data"
        ]
    );

    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1\nname: crm\nsources:\n  db:\n    postgres: {{ database: crm, host: {host}, port: {port}, user: postgres, bin_dir: {BIN_DIR} }}\n\
             storage:\n  local: {{ local: {{ path: {store} }} }}\nsteps:\n  - {{ id: db, backup: db }}\n",
            host = pg.socket_dir().display(),
            port = pg.port,
            store = work.path().join("backups").display()
        ),
    )
    .unwrap();
    let planrun = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_planrun"))
            .args(args)
            .current_dir(work.path())
            .output()
            .unwrap()
    };
    let state = work.path().join("state");
    let output = planrun(&[
        "execute",
        plan.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    pg.psql("crm", "INSERT INTO crm.customers VALUES (3)");

    let output = planrun(&[
        "restore",
        plan.to_str().unwrap(),
        "--source",
        "db",
        "--to",
        "crm",
        "--force",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    assert_eq!(pg.psql("crm", "SELECT count(*) FROM crm.customers"), "2");
    assert_eq!(identity(&pg, "crm"), before);
    // The setting still works as a setting: a new session of `reader` sees it.
    assert_eq!(
        pg.psql("crm", "SHOW search_path"),
        "crm, \"My Schema\", public"
    );
}
