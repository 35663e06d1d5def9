//! The postgres source against a real PostgreSQL 15 the harness starts: round trips in every
//! format, the force rule, and pg_dump failures that must surface with pg_dump's message.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
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

/// The source section reaching `database` over the unix socket (trusted, no password), with
/// `extra` keys (`, format: plain`) appended.
fn socket_source(pg: &PgServer, database: &str, extra: &str) -> String {
    format!(
        "{{ postgres: {{ database: {database}, host: {}, port: {}, user: postgres, bin_dir: {BIN_DIR}{extra} }} }}",
        pg.socket_dir().display(),
        pg.port
    )
}

/// The source section reaching `database` over TCP, where the password is checked.
fn tcp_source(pg: &PgServer, database: &str, password: &str) -> String {
    // A JSON string is a YAML double-quoted scalar, so any password survives as it is.
    format!(
        "{{ postgres: {{ database: {database}, host: 127.0.0.1, port: {}, user: postgres, password: {}, bin_dir: {BIN_DIR} }} }}",
        pg.port,
        serde_json::to_string(password).unwrap()
    )
}

/// Writes plan `crm` whose one source `db` is `source`, backed up into `work/store`.
fn db_plan(work: &Path, source: &str) -> PathBuf {
    let plan = work.join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1\nname: crm\nsources:\n  db: {source}\n\
             storage:\n  local: {{ local: {{ path: {} }} }}\nsteps:\n  - {{ id: db, backup: db }}\n",
            work.join("store").display()
        ),
    )
    .unwrap();
    plan
}

fn planrun(work: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(args)
        .arg("--state-dir")
        .arg(work.join("state"))
        .current_dir(work)
        .output()
        .unwrap()
}

/// The set folders of plan `crm` in `work/store`, oldest first.
fn sets(work: &Path) -> Vec<String> {
    let dir = work.join("store/crm");
    if dir.exists() {
        support::names(&dir)
    } else {
        Vec::new()
    }
}

/// `planrun execute` of `plan`: the newest set's id and manifest, or what the run printed to
/// stderr when it failed.
fn back_up(work: &Path, plan: &Path) -> Result<(String, Value), String> {
    let output = planrun(work, &["execute", plan.to_str().unwrap()]);
    if output.status.code() != Some(0) {
        return Err(support::run::stderr(&output));
    }
    let id = sets(work).pop().expect("the run made a set");
    let manifest = std::fs::read(work.join("store/crm").join(&id).join("manifest.json")).unwrap();
    Ok((id, serde_json::from_slice(&manifest).unwrap()))
}

/// `planrun restore` of source `db` from the set `selector` names into `database`: the set
/// it read and the facts it printed, or what it printed to stderr when it failed.
fn restore_db(
    work: &Path,
    plan: &Path,
    selector: &str,
    database: &str,
    force: bool,
) -> Result<(String, Map<String, Value>), String> {
    let mut args = vec![
        "restore",
        plan.to_str().unwrap(),
        "--source",
        "db",
        "--set",
        selector,
        "--to",
        database,
    ];
    if force {
        args.push("--force");
    }
    let output = planrun(work, &args);
    if output.status.code() != Some(0) {
        return Err(support::run::stderr(&output));
    }
    let stdout = support::run::stdout(&output);
    let mut lines = stdout.lines();
    let first = lines.next().unwrap();
    let set = first
        .strip_prefix("restored db from local set ")
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("{stdout}"))
        .0
        .to_owned();
    let facts = lines
        .map(|line| {
            let (name, value) = line.trim_start().split_once(": ").unwrap();
            (name.to_owned(), serde_json::from_str(value).unwrap())
        })
        .collect();
    Ok((set, facts))
}

/// Every file name under `root`, at any depth.
fn every_name(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn every_format_round_trips_with_facts_and_force_rules() {
    let pg = PgServer::start();
    seed(&pg, "crm");
    let expected = fingerprint(&pg, "crm");
    let work = tempfile::tempdir().unwrap();
    let count_rows = format!(", count_rows: [{}]", TABLES.join(", "));
    for (format, target) in [
        ("custom", "crm_custom"),
        ("directory", "crm_dir"),
        ("plain", "crm_plain"),
    ] {
        let source = socket_source(
            &pg,
            "crm",
            &format!(", format: {format}, jobs: 2{count_rows}"),
        );
        let plan = db_plan(work.path(), &source);
        let (id, manifest) =
            back_up(work.path(), &plan).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let facts = &manifest["artifacts"][0]["facts"];
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

        let (set, outcome) = restore_db(work.path(), &plan, &id, target, false)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(set, id);
        assert_eq!(outcome["row_counts"], facts["row_counts"]);
        assert_eq!(fingerprint(&pg, target), expected, "{format:?}");
    }

    // An existing database with data is replaced only with force, and then completely.
    pg.psql("crm_custom", "DELETE FROM sales_sale WHERE id > 10");
    let plan = db_plan(work.path(), &socket_source(&pg, "crm", &count_rows));
    let refuse = restore_db(work.path(), &plan, "latest", "crm_custom", false).unwrap_err();
    assert!(
        refuse.starts_with(
            "planrun: restore of db failed: refusing to replace database crm_custom: it exists with 3 tables and 0 connections"
        ),
        "{refuse}"
    );
    restore_db(work.path(), &plan, "latest", "crm_custom", true).unwrap();
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
    let work = work.path();

    let good = db_plan(work, &tcp_source(&pg, "crm", PASSWORD));
    back_up(work, &good).expect("the right password works over TCP");

    let bad = db_plan(work, &tcp_source(&pg, "crm", "wrong"));
    let error = back_up(work, &bad).unwrap_err();
    assert!(
        error.contains("password authentication failed for user \"postgres\""),
        "{error}"
    );
    assert!(
        !error.contains("wrong"),
        "the password must not appear: {error}"
    );
    // The failed run's set folder is gone: no artifact, no temp file.
    assert_eq!(sets(work).len(), 1, "no artifact, no temp file");
    // The passfile lived in scratch only for the attempt.
    assert!(!every_name(work).iter().any(|n| n.starts_with("pgpass")));

    let missing = db_plan(work, &socket_source(&pg, "nope", ""));
    let error = back_up(work, &missing).unwrap_err();
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
    let source = socket_source(&pg, "crm", "").replace(BIN_DIR, &bin.display().to_string());
    let plan = db_plan(work.path(), &source);
    match back_up(work.path(), &plan) {
        // `{program} failed ({status}): {stderr}`, as the step's failure line.
        Err(error) => {
            assert!(error.contains(": backup `db`: pg_dump failed ("), "{error}");
            assert!(
                error.contains(
                    "): pg_dump: error: query failed: server closed the connection unexpectedly\n"
                ),
                "{error}"
            );
        }
        other => panic!("expected a pg_dump failure, got {other:?}"),
    }
    assert_eq!(sets(work.path()), Vec::<String>::new());
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
