//! The postgres source: pg_dump (custom, directory or plain), with facts taken from the same
//! snapshot as the dump; restored with pg_restore or psql into a database created for it.

use std::io::{BufRead, BufReader, PipeReader, PipeWriter, Write};
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{
    SourceBackup, SourceError, Stop, child, directory, finish_tar_zstd, finish_zstd, safe_extract,
    tree_archive, zstd_encoder,
};
use crate::leftovers;
use crate::plan::{OnUnreadable, PgFormat, PostgresSource};
use crate::process::ToolPipes;
use crate::storage::{ArtifactEntry, ArtifactKind, ArtifactWriter, Facts};

const HINT: Option<&str> =
    Some("install the PostgreSQL client (postgresql-client-15) or set `bin_dir`");

/// Builds a command for one of the PostgreSQL tools with the connection in its environment.
///
/// The password travels in `PGPASSWORD`, in the environment of the PostgreSQL tool alone: it
/// never reaches argv, and never a file that a killed run could leave behind (a passfile in
/// the scratch folder outlived planrun when it was killed with SIGKILL). Linux shows a
/// process's environment only to its owner and root, the same people who could read a 0600
/// passfile.
fn tool(source: &PostgresSource, program: &str) -> Command {
    let path = match &source.bin_dir {
        Some(dir) => Path::new(dir).join(program),
        None => PathBuf::from(program),
    };
    let mut command = Command::new(path);
    if let Some(host) = &source.host {
        command.env("PGHOST", host);
    }
    if let Some(port) = source.port {
        command.env("PGPORT", port.to_string());
    }
    if let Some(user) = &source.user {
        command.env("PGUSER", user);
    }
    if let Some(password) = &source.password {
        command.env("PGPASSWORD", password).env_remove("PGPASSFILE");
    }
    command
        .env_remove("PGDATABASE")
        .env("PGCONNECT_TIMEOUT", "15")
        .env("PGAPPNAME", "planrun");
    command
}

/// Why `database` must not be used as it is, if it must not: a connection URI or conninfo
/// string that carries a password would put it on every tool's command line
/// (`--dbname=postgresql://u:PASSWORD@…`), visible in `ps` to every user. `(message, help)`.
pub fn database_password_problem(database: &str) -> Option<(String, String)> {
    let lower = database.to_ascii_lowercase();
    let in_uri = ["postgresql://", "postgres://"].iter().any(|scheme| {
        lower.strip_prefix(scheme).is_some_and(|rest| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            authority
                .rsplit_once('@')
                .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        }) || lower.starts_with(scheme) && lower.contains("password=")
    });
    let in_conninfo = !lower.contains("://")
        && lower
            .split_whitespace()
            .any(|pair| pair.trim_start().starts_with("password"));
    (in_uri || in_conninfo).then(|| {
        (
            "the database connection string holds a password, which would be on the command line of pg_dump, pg_restore and psql (`--dbname=…`), visible in `ps`".to_owned(),
            "remove the password from `database` and set the source's `password: \"{{secrets.NAME}}\"`; planrun passes it to the tools in their environment only".to_owned(),
        )
    })
}

fn dbname(database: &str) -> String {
    format!("--dbname={database}")
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `schema.table` or `table`, each part quoted.
fn quote_table(name: &str) -> String {
    name.split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// One query returning the row counts of `tables` as a JSON object.
fn count_query(tables: &[String]) -> String {
    if tables.is_empty() {
        return "SELECT '{}'".into();
    }
    let pairs: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "{}, (SELECT count(*) FROM {})",
                quote_literal(t),
                quote_table(t)
            )
        })
        .collect();
    format!("SELECT json_build_object({})::text", pairs.join(", "))
}

/// A psql process kept open so that facts and the dump read the same snapshot. A count over
/// a big or locked table can take as long as it likes: a stop (the step's timeout, a signal)
/// makes the supervisor kill psql rather than leave it running on the server after us.
struct Session {
    running: Option<child::Running>,
    stdin: Option<PipeWriter>,
    stdout: BufReader<PipeReader>,
}

impl Session {
    fn open(source: &PostgresSource, database: &str, stop: &Stop) -> Result<Session, SourceError> {
        let mut command = tool(source, "psql");
        command
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg(dbname(database));
        let pipes = ToolPipes {
            stdin: true,
            stdout: true,
        };
        let mut running = child::start(command, pipes, HINT, stop)?;
        let stdin = running.tool.stdin.take().expect("piped");
        let stdout = BufReader::new(running.tool.stdout.take().expect("piped"));
        Ok(Session {
            running: Some(running),
            stdin: Some(stdin),
            stdout,
        })
    }

    /// Runs statements and returns the one line of output the last one prints.
    fn query(&mut self, sql: &str) -> Result<String, SourceError> {
        let sent = match &mut self.stdin {
            Some(stdin) => writeln!(stdin, "{sql};").and_then(|()| stdin.flush()),
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        };
        let mut line = String::new();
        let read = sent.and_then(|()| self.stdout.read_line(&mut line));
        match read {
            Ok(n) if n > 0 => Ok(line.trim_end().to_owned()),
            _ => Err(self.failure()),
        }
    }

    /// Ends psql after a failed query; its stderr says why.
    fn failure(&mut self) -> SourceError {
        self.stdin = None;
        let Some(running) = self.running.take() else {
            return SourceError::Stopped;
        };
        running.tool.stop();
        match running.wait() {
            Ok((exit, program, stop)) if !stop.is_stopped() => SourceError::Tool {
                program,
                status: child::describe(&exit.exit),
                stderr: exit.stderr,
            },
            Ok(_) => SourceError::Stopped,
            Err(error) => error,
        }
    }

    fn close(mut self) -> Result<(), SourceError> {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "COMMIT;\n\\q").and_then(|()| stdin.flush());
        }
        self.stdin = None;
        match self.running.take() {
            Some(running) => running.finish().map(drop),
            None => Ok(()),
        }
    }
}

impl Drop for Session {
    /// A session left open because the dump failed must not linger holding its snapshot.
    fn drop(&mut self) {
        self.stdin = None;
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}

pub fn back_up(
    name: &str,
    source: &PostgresSource,
    set_dir: &Path,
    scratch: &Path,
    stop: &Stop,
) -> Result<SourceBackup, SourceError> {
    let mut version = tool(source, "pg_dump");
    version.arg("--version");
    let pg_dump_version = child::capture(version, HINT, stop)?.trim().to_owned();

    let mut session = Session::open(source, &source.database, stop)?;
    // Statements that print nothing would leave `query` waiting for a line, so BEGIN travels
    // with the query whose answer we need.
    let snapshot = session
        .query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot()")?;
    let server_version = session.query("SHOW server_version")?;
    let counts_json = session.query(&count_query(&source.count_rows))?;
    let counts: serde_json::Value =
        serde_json::from_str(&counts_json).map_err(|error| SourceError::Tool {
            program: "psql".into(),
            status: "unexpected output".into(),
            stderr: format!("{error}: {counts_json}"),
        })?;

    let format = source.format.unwrap_or_default();
    let mut dump = tool(source, "pg_dump");
    dump.arg(format!("--snapshot={snapshot}"))
        .arg("--no-password");
    let (artifact, kind, digest) = match format {
        PgFormat::Custom | PgFormat::Plain => {
            let (suffix, kind, flags): (_, _, &[&str]) = match format {
                // zlib is most of pg_dump's time; -Z0 and zstd here is several times faster
                // and smaller (see FINDINGS).
                PgFormat::Custom => (
                    "pgdump.zst",
                    ArtifactKind::PgDumpCustomZstd,
                    &["--format=custom", "--compress=0"],
                ),
                _ => (
                    "sql.zst",
                    ArtifactKind::PgDumpPlainZstd,
                    &["--format=plain"],
                ),
            };
            dump.args(flags).arg(dbname(&source.database));
            let artifact = format!("{name}.{suffix}");
            let writer = ArtifactWriter::create(set_dir, &artifact)?;
            let mut encoder = zstd_encoder(writer, 3, &artifact)?;
            child::stream_stdout(dump, &mut encoder, HINT, stop)?;
            let digest = finish_zstd(encoder, &set_dir.join(&artifact))?;
            (artifact, kind, digest)
        }
        PgFormat::Directory => {
            let work = tempfile::Builder::new()
                .prefix("pg_dump-")
                .tempdir_in(scratch)
                .map_err(SourceError::io("create a folder in", scratch))?;
            let out = work.path().join("dump");
            dump.arg("--format=directory")
                .arg("--compress=0")
                .arg(format!("--jobs={}", source.jobs.unwrap_or(2)))
                .arg("--file")
                .arg(&out)
                .arg(dbname(&source.database));
            child::capture(dump, HINT, stop)?;
            let artifact = format!("{name}.pgdir.tar.zst");
            let writer = ArtifactWriter::create(set_dir, &artifact)?;
            let mut builder = tar::Builder::new(zstd_encoder(writer, 3, &artifact)?);
            let facts = tree_archive::append_tree(
                &mut builder,
                &out,
                &globset::GlobSet::empty(),
                OnUnreadable::Fail,
                stop,
            )?;
            if facts.files == 0 {
                return Err(SourceError::Empty {
                    program: "pg_dump".into(),
                });
            }
            let digest = finish_tar_zstd(builder, &set_dir.join(&artifact))?;
            (artifact, ArtifactKind::PgDumpDirectoryTarZstd, digest)
        }
    };
    session.close()?;

    let mut facts = Facts::new();
    facts.insert("database".into(), source.database.clone().into());
    // The cluster's roles travel with the set so that a new server (levels 2-4) gets the
    // database back with its owner and grants. Without passwords: a set must never hold one.
    // Best effort: an account that may dump a database but not list roles still gets its
    // backup, and the restore says the set holds no roles.
    match globals(source, stop) {
        Ok(text) => facts.insert("globals".into(), text.into()),
        Err(error) => facts.insert("globals_error".into(), error.to_string().into()),
    };
    facts.insert("row_counts".into(), counts);
    facts.insert("server_version".into(), server_version.into());
    facts.insert("pg_dump_version".into(), pg_dump_version.into());
    Ok(SourceBackup {
        artifacts: vec![ArtifactEntry {
            name: artifact,
            source: name.to_owned(),
            kind,
            size: digest.size,
            sha256: digest.sha256,
            facts,
        }],
        warnings: Vec::new(),
    })
}

/// `pg_dumpall --globals-only --no-role-passwords`: the roles (and tablespaces) of the
/// cluster, as SQL.
fn globals(source: &PostgresSource, stop: &Stop) -> Result<String, SourceError> {
    let mut command = tool(source, "pg_dumpall");
    command.args(["--globals-only", "--no-role-passwords", "--no-password"]);
    if let Some(user) = &source.user {
        command.arg(format!("--username={user}"));
    }
    // Only the statements: comments, blank lines and psql meta-commands (`\restrict`) are
    // noise in a manifest and in every listing of its facts.
    let text = child::capture(command, HINT, stop)?;
    Ok(text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("--") && !l.starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect())
}

/// The roles a set's globals create, each as its statements (`CREATE ROLE`, then the
/// `ALTER ROLE … WITH …` that gives its attributes), by the name as written (quoted or not).
fn roles_in(globals: &str) -> Vec<(String, Vec<String>)> {
    let mut roles: Vec<(String, Vec<String>)> = Vec::new();
    for line in globals.lines() {
        if let Some(name) = line
            .strip_prefix("CREATE ROLE ")
            .and_then(|r| r.strip_suffix(';'))
        {
            roles.push((name.to_owned(), vec![line.to_owned()]));
        } else if let Some(rest) = line.strip_prefix("ALTER ROLE ")
            && let Some((name, _)) = rest.split_once(" WITH ")
            && let Some(role) = roles.iter_mut().find(|(n, _)| n == name)
        {
            role.1.push(line.to_owned());
        }
    }
    roles
}

/// A role name as pg_dumpall writes it (`crm` or `"My Role"`), unquoted.
fn unquote_ident(written: &str) -> String {
    match written.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => written.to_owned(),
    }
}

/// Creates the roles of `globals` that the server lacks (with their attributes, without
/// passwords), so that pg_restore can give objects their owners. Roles that exist are left
/// as they are. Returns the names created.
fn create_missing_roles(
    source: &PostgresSource,
    globals: &str,
) -> Result<Vec<String>, SourceError> {
    let existing = psql_value(
        source,
        "postgres",
        "SELECT string_agg(rolname, E'\\n') FROM pg_roles",
    )?;
    let existing: Vec<&str> = existing.lines().collect();
    let mut created = Vec::new();
    for (written, statements) in roles_in(globals) {
        let name = unquote_ident(&written);
        if existing.contains(&name.as_str()) {
            continue;
        }
        psql_value(source, "postgres", &statements.join(" "))?;
        created.push(name);
    }
    Ok(created)
}

fn psql_value(source: &PostgresSource, database: &str, sql: &str) -> Result<String, SourceError> {
    let mut command = tool(source, "psql");
    command
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(dbname(database));
    Ok(child::capture(command, HINT, &Stop::new())?
        .trim()
        .to_owned())
}

/// Runs one query in `database` and returns what it printed (unaligned, no header), for
/// checks; `stop` ends psql (its whole group) when the check runs out of time.
pub fn query_text(
    source: &PostgresSource,
    database: &str,
    sql: &str,
    stop: &Stop,
) -> Result<String, SourceError> {
    let mut command = tool(source, "psql");
    command
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(dbname(database));
    Ok(child::capture(command, HINT, stop)?.trim_end().to_owned())
}

/// Whether `database` exists on the source's server.
pub fn database_exists(source: &PostgresSource, database: &str) -> Result<bool, SourceError> {
    Ok(psql_value(
        source,
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            quote_literal(database)
        ),
    )? == "1")
}

/// Row counts of `tables` in `database`, as a JSON object.
pub fn count_rows(
    source: &PostgresSource,
    database: &str,
    tables: &[String],
) -> Result<serde_json::Value, SourceError> {
    let text = psql_value(source, database, &count_query(tables))?;
    serde_json::from_str(&text).map_err(|error| SourceError::Tool {
        program: "psql".into(),
        status: "unexpected output".into(),
        stderr: format!("{error}: {text}"),
    })
}

/// Restores a dump into `database` on the source's server.
///
/// A missing database is created. An existing one that holds tables or has connections is
/// replaced only with `force`; the dump is then restored into a new database first and
/// swapped in by rename only when the restore succeeded, so a failed restore leaves the old
/// database untouched. The new database takes over the old one's owner, grants, settings,
/// connection limit and comment before the swap (see [`Identity`]).
///
/// With `keep_previous` (a suffix, `_before_<incident>`), the replaced database is not
/// dropped but renamed to `<database><suffix>`, so a recovery can always be undone. With
/// `globals` (the set's `pg_dumpall --globals-only`), roles the server lacks are created
/// first, so the database comes back with its owners on a server that never saw it.
#[expect(
    clippy::too_many_arguments,
    reason = "one restore's inputs, passed through once"
)]
pub fn restore(
    kind: ArtifactKind,
    artifact: &Path,
    source: &PostgresSource,
    database: &str,
    force: bool,
    keep_previous: Option<&str>,
    globals: Option<&str>,
    scratch: &Path,
) -> Result<Restored, SourceError> {
    let admin = "postgres";
    let roles_created = match globals {
        Some(globals) => create_missing_roles(source, globals)?,
        None => Vec::new(),
    };
    let exists = psql_value(
        source,
        admin,
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            quote_literal(database)
        ),
    )? == "1";
    let mut into = database.to_owned();
    let mut identity = None;
    if exists {
        let connections = psql_value(
            source,
            admin,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = {}",
                quote_literal(database)
            ),
        )?;
        let tables = psql_value(
            source,
            database,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'm') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
        )?;
        let busy = connections != "0" || tables != "0";
        if busy && !force {
            return Err(SourceError::TargetInUse {
                target: format!("database {database}"),
                why: format!("exists with {tables} tables and {connections} connections"),
            });
        }
        identity = Some(Identity::read(source, admin, database)?);
        // The name carries the run id, and the run's ledger claims it before it exists, so
        // that if planrun is killed the next run can prove it is a leftover and drop it.
        into = leftovers::temporary_database(database);
        leftovers::claim_database(source, &into);
    }
    psql_value(
        source,
        admin,
        &format!("CREATE DATABASE {}", quote_ident(&into)),
    )?;
    let restored =
        load_dump(kind, artifact, source, &into, scratch).and_then(|()| match &identity {
            Some(identity) => identity.apply(source, admin, database, &into),
            None => Ok(()),
        });
    if let Err(error) = restored {
        let _ = psql_value(
            source,
            admin,
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&into)
            ),
        );
        if exists {
            leftovers::release_database(&into);
        }
        return Err(error);
    }
    let mut kept = None;
    if exists {
        match keep_previous {
            Some(suffix) => {
                // The first free name: a second restore of the same target in one incident
                // (a re-run after kill -9 landed after the swap, or a level restoring it
                // twice) keeps the state it replaces beside the first, never over it.
                let mut before = format!("{database}{suffix}");
                let mut n = 2;
                while database_exists(source, &before)? {
                    before = format!("{database}{suffix}_{n}");
                    n += 1;
                }
                // Connections to the damaged database are ended: it is being replaced, and
                // a rename needs it idle. Its data stays whole under the new name.
                psql_value(
                    source,
                    admin,
                    &format!(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = {}",
                        quote_literal(database)
                    ),
                )?;
                psql_value(
                    source,
                    admin,
                    &format!(
                        "ALTER DATABASE {} RENAME TO {}",
                        quote_ident(database),
                        quote_ident(&before)
                    ),
                )?;
                kept = Some(before);
            }
            None => {
                psql_value(
                    source,
                    admin,
                    &format!("DROP DATABASE {} WITH (FORCE)", quote_ident(database)),
                )?;
            }
        }
        psql_value(
            source,
            admin,
            &format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(&into),
                quote_ident(database)
            ),
        )?;
        leftovers::release_database(&into);
    }
    Ok(Restored {
        kept,
        roles_created,
    })
}

/// What a database restore did beside loading the dump.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    /// The name the replaced database was kept under, when it was kept.
    pub kept: Option<String>,
    /// Roles created from the set's globals because the server lacked them.
    pub roles_created: Vec<String>,
}

/// What makes a database more than its contents, kept in the cluster's catalogs rather than
/// in a dump: its owner, its grants (`GRANT CONNECT ON DATABASE`), its settings
/// (`ALTER DATABASE … SET`, `ALTER ROLE … IN DATABASE … SET`), its connection limit and its
/// comment. Dropping the database loses all of them.
///
/// They are read from the database being replaced at restore time, not from the backup:
/// they describe who may use the database now, which a restore of older data must not
/// roll back (a grant revoked since the backup stays revoked), and sets written before
/// this was added carry none of it. A database that did not exist is simply created.
#[derive(Debug, serde::Deserialize)]
struct Identity {
    owner: String,
    /// Whether the database has an explicit ACL (`None` in the catalog means the default:
    /// the owner has all, PUBLIC may connect and create temporary tables).
    has_acl: bool,
    #[serde(default)]
    acl: Option<Vec<Grant>>,
    connection_limit: i64,
    comment: Option<String>,
    #[serde(default)]
    settings: Option<Vec<RoleSettings>>,
}

#[derive(Debug, serde::Deserialize)]
struct Grant {
    /// `None` for PUBLIC.
    grantee: Option<String>,
    privilege: String,
    grantable: bool,
}

#[derive(Debug, serde::Deserialize)]
struct RoleSettings {
    /// `None` for settings of the database itself.
    role: Option<String>,
    /// `name=value` items, as the catalog holds them.
    config: Vec<String>,
}

/// Settings whose value is a list of names: the catalog holds them flattened (`crm,
/// public`), and giving that back as one literal would make it a single name. pg_dump keeps
/// the same list.
const LIST_SETTINGS: [&str; 6] = [
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

impl Identity {
    fn read(source: &PostgresSource, admin: &str, database: &str) -> Result<Identity, SourceError> {
        let query = format!(
            "SELECT json_build_object(\
               'owner', pg_get_userbyid(d.datdba), \
               'has_acl', d.datacl IS NOT NULL, \
               'acl', (SELECT json_agg(json_build_object(\
                   'grantee', CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, \
                   'privilege', a.privilege_type, 'grantable', a.is_grantable) \
                   ORDER BY a.grantee, a.privilege_type) FROM aclexplode(d.datacl) a), \
               'connection_limit', d.datconnlimit, \
               'comment', shobj_description(d.oid, 'pg_database'), \
               'settings', (SELECT json_agg(json_build_object(\
                   'role', CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, \
                   'config', s.setconfig) ORDER BY s.setrole) \
                   FROM pg_db_role_setting s WHERE s.setdatabase = d.oid))::text \
             FROM pg_database d WHERE d.datname = {}",
            quote_literal(database)
        );
        let text = psql_value(source, admin, &query)?;
        serde_json::from_str(&text).map_err(|error| SourceError::Tool {
            program: "psql".into(),
            status: "unexpected output".into(),
            stderr: format!("{error}: {text}"),
        })
    }

    /// The statements that give database `into` this identity, in order: the owner first,
    /// so that grants are recorded as the owner's.
    fn statements(&self, into: &str) -> Vec<String> {
        let db = quote_ident(into);
        let mut out = vec![format!(
            "ALTER DATABASE {db} OWNER TO {}",
            quote_ident(&self.owner)
        )];
        if self.has_acl {
            out.push(format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"));
            out.push(format!(
                "REVOKE ALL ON DATABASE {db} FROM {}",
                quote_ident(&self.owner)
            ));
            for grant in self.acl.iter().flatten() {
                let grantee = grant
                    .grantee
                    .as_deref()
                    .map_or_else(|| "PUBLIC".to_owned(), quote_ident);
                let option = if grant.grantable {
                    " WITH GRANT OPTION"
                } else {
                    ""
                };
                // The privilege comes from the catalog (CREATE, TEMPORARY, CONNECT), never
                // from input; it is still checked to be a plain word.
                if grant.privilege.chars().all(|c| c.is_ascii_uppercase()) {
                    out.push(format!(
                        "GRANT {} ON DATABASE {db} TO {grantee}{option}",
                        grant.privilege
                    ));
                }
            }
        }
        if self.connection_limit != -1 {
            out.push(format!(
                "ALTER DATABASE {db} CONNECTION LIMIT {}",
                self.connection_limit
            ));
        }
        if let Some(comment) = &self.comment {
            out.push(format!(
                "COMMENT ON DATABASE {db} IS {}",
                quote_literal(comment)
            ));
        }
        for settings in self.settings.iter().flatten() {
            let target = match &settings.role {
                Some(role) => format!("ROLE {} IN DATABASE {db}", quote_ident(role)),
                None => format!("DATABASE {db}"),
            };
            for item in &settings.config {
                let Some((name, value)) = item.split_once('=') else {
                    continue;
                };
                let values = if LIST_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
                    split_list(value)
                        .iter()
                        .map(|v| quote_literal(v))
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    quote_literal(value)
                };
                out.push(format!(
                    "ALTER {target} SET {} TO {values}",
                    quote_ident(name)
                ));
            }
        }
        out
    }

    /// Gives `into` the identity of `database`, all or nothing (psql runs the statements
    /// of one `-c` in one transaction).
    fn apply(
        &self,
        source: &PostgresSource,
        admin: &str,
        database: &str,
        into: &str,
    ) -> Result<(), SourceError> {
        let sql = self.statements(into).join("; ");
        psql_value(source, admin, &sql)
            .map(drop)
            .map_err(|error| match error {
                SourceError::Tool {
                    program,
                    status,
                    stderr,
                } => SourceError::Tool {
                    program,
                    status: format!(
                        "{status}, while giving the restored database the owner, grants and settings of database {database}"
                    ),
                    stderr,
                },
                other => other,
            })
    }
}

/// Splits a flattened list setting (`crm, "My Schema"`) into its names, as PostgreSQL's own
/// SplitGUCList does: commas between, whitespace around, double quotes kept out.
fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut item = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.next_if_eq(&'"').is_some() {
                        item.push('"');
                    } else {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',' && !c.is_whitespace()) {
                item.push(c);
            }
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&',');
        out.push(item);
    }
    out
}

/// Drops `database` if it exists (a dead run's temporary database); whether it existed.
pub(crate) fn drop_database_if_exists(
    source: &PostgresSource,
    database: &str,
) -> Result<bool, SourceError> {
    let exists = psql_value(
        source,
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            quote_literal(database)
        ),
    )? == "1";
    if exists {
        psql_value(
            source,
            "postgres",
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(database)
            ),
        )?;
    }
    Ok(exists)
}

fn load_dump(
    kind: ArtifactKind,
    artifact: &Path,
    source: &PostgresSource,
    database: &str,
    scratch: &Path,
) -> Result<(), SourceError> {
    match kind {
        ArtifactKind::PgDumpCustomZstd => {
            let mut command = tool(source, "pg_restore");
            command
                .args(["--exit-on-error", "--single-transaction", "--no-password"])
                .arg(dbname(database));
            let mut input = directory::decoder(artifact)?;
            child::feed_stdin(command, &mut input, HINT, &Stop::new())
        }
        ArtifactKind::PgDumpPlainZstd => {
            let mut command = tool(source, "psql");
            command
                .args([
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "--single-transaction",
                    "--no-password",
                ])
                .arg(dbname(database));
            let mut input = directory::decoder(artifact)?;
            child::feed_stdin(command, &mut input, HINT, &Stop::new())
        }
        ArtifactKind::PgDumpDirectoryTarZstd => {
            safe_extract::scan_without_links(directory::decoder(artifact)?)?;
            let work = tempfile::Builder::new()
                .prefix("pg_restore-")
                .tempdir_in(scratch)
                .map_err(SourceError::io("create a folder in", scratch))?;
            safe_extract::extract(directory::decoder(artifact)?, work.path(), work.path())?;
            let mut command = tool(source, "pg_restore");
            command
                .args(["--exit-on-error", "--no-password"])
                .arg(format!("--jobs={}", source.jobs.unwrap_or(2)))
                .arg(dbname(database))
                .arg(work.path());
            child::capture(command, HINT, &Stop::new()).map(drop)
        }
        other => Err(SourceError::WrongKind {
            what: format!("a {other:?} artifact"),
            kind: "postgres",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{database_password_problem, roles_in, split_list, unquote_ident};

    #[test]
    fn a_password_in_a_connection_string_is_found() {
        for database in [
            "postgresql://u:pw@127.0.0.1:5999/crm",
            "postgres://u:@h/crm",
            "POSTGRESQL://u:p%40w@h",
            "postgresql://h/crm?password=x",
            "host=h dbname=crm password=x",
            "host=h password = x",
        ] {
            assert!(database_password_problem(database).is_some(), "{database}");
        }
        for database in [
            "crm",
            "postgresql://u@127.0.0.1:5999/crm",
            "postgresql://h/crm?user=a",
            "host=h dbname=crm user=u",
        ] {
            assert!(database_password_problem(database).is_none(), "{database}");
        }
    }

    #[test]
    fn roles_come_with_their_attributes_and_quoted_names_unquote() {
        let globals = "--\nCREATE ROLE crm;\nALTER ROLE crm WITH NOSUPERUSER INHERIT LOGIN;\nCREATE ROLE \"My \"\"Role\"\";\nALTER ROLE \"My \"\"Role\"\" WITH NOLOGIN;\nGRANT crm TO \"My \"\"Role\"\";\n";
        let roles = roles_in(globals);
        assert_eq!(roles.len(), 2);
        assert_eq!(roles[0].0, "crm");
        assert_eq!(
            roles[0].1,
            [
                "CREATE ROLE crm;",
                "ALTER ROLE crm WITH NOSUPERUSER INHERIT LOGIN;"
            ]
        );
        assert_eq!(unquote_ident(&roles[1].0), "My \"Role\"");
        assert_eq!(roles[1].1.len(), 2);
    }

    #[test]
    fn list_settings_split_like_postgres() {
        assert_eq!(split_list("crm, public"), ["crm", "public"]);
        assert_eq!(
            split_list("\"$user\", \"My \"\"Schema\"\"\",public"),
            ["$user", "My \"Schema\"", "public"]
        );
        assert_eq!(split_list("\"\""), [""]);
    }
}
