//! The postgres source: pg_dump (custom, directory or plain), with facts taken from the same
//! snapshot as the dump; restored with pg_restore or psql into a database created for it.

use std::io::{BufRead, BufReader, PipeReader, PipeWriter, Write};
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{
    SourceBackup, SourceError, Stop, child, directory, finish_tar_zstd, finish_zstd, safe_extract,
    tree_archive, zstd_encoder,
};
use crate::backup_set::{ArtifactEntry, ArtifactKind, ArtifactWriter, Facts};
use crate::leftovers;
use crate::plan::{OnUnreadable, PgFormat, PostgresSource};
use crate::process::ToolPipes;

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

fn psql_value(source: &PostgresSource, database: &str, sql: &str) -> Result<String, SourceError> {
    let mut command = tool(source, "psql");
    command
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(dbname(database));
    Ok(child::capture(command, HINT, &Stop::new())?
        .trim()
        .to_owned())
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
/// database untouched.
pub fn restore(
    kind: ArtifactKind,
    artifact: &Path,
    source: &PostgresSource,
    database: &str,
    force: bool,
    scratch: &Path,
) -> Result<(), SourceError> {
    let admin = "postgres";
    let exists = psql_value(
        source,
        admin,
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            quote_literal(database)
        ),
    )? == "1";
    let mut into = database.to_owned();
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
    let restored = load_dump(kind, artifact, source, &into, scratch);
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
    if exists {
        psql_value(
            source,
            admin,
            &format!("DROP DATABASE {} WITH (FORCE)", quote_ident(database)),
        )?;
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
    Ok(())
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
            safe_extract::scan(directory::decoder(artifact)?)?;
            let work = tempfile::Builder::new()
                .prefix("pg_restore-")
                .tempdir_in(scratch)
                .map_err(SourceError::io("create a folder in", scratch))?;
            safe_extract::extract(directory::decoder(artifact)?, work.path())?;
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
