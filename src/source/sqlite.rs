//! The sqlite source: an online copy through SQLite's backup API, integrity-checked, zstd.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{SourceBackup, SourceError, Stop, finish_zstd, open_verified, zstd_encoder};
use crate::plan::SqliteSource;
use crate::storage::{ArtifactEntry, ArtifactKind, ArtifactWriter, Facts};

/// Gives up between reads once the backup is stopped: a database can be many gigabytes.
struct StopRead<'a, R> {
    inner: R,
    stop: &'a Stop,
}

impl<R: Read> Read for StopRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.is_stopped() {
            // Not `Interrupted`: `io::copy` retries that kind forever.
            return Err(std::io::Error::other("the backup was stopped"));
        }
        self.inner.read(buf)
    }
}

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> SourceError + '_ {
    move |error| SourceError::Sqlite {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `PRAGMA integrity_check` answers `ok` or a list of problems.
fn integrity_check(connection: &Connection, path: &Path) -> Result<(), SourceError> {
    let mut statement = connection
        .prepare("PRAGMA integrity_check")
        .map_err(sqlite_error(path))?;
    let rows: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .map_err(sqlite_error(path))?
        .collect::<Result<_, _>>()
        .map_err(sqlite_error(path))?;
    if rows == ["ok"] {
        Ok(())
    } else {
        Err(SourceError::Integrity {
            path: path.to_owned(),
            message: rows.join("; "),
        })
    }
}

/// Row counts of the named tables, or of every table.
pub fn row_counts(
    connection: &Connection,
    path: &Path,
    tables: Option<&[String]>,
) -> Result<Facts, SourceError> {
    let names: Vec<String> = match tables {
        Some(tables) => tables.to_vec(),
        None => {
            let mut statement = connection
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .map_err(sqlite_error(path))?;
            statement
                .query_map([], |row| row.get(0))
                .map_err(sqlite_error(path))?
                .collect::<Result<_, _>>()
                .map_err(sqlite_error(path))?
        }
    };
    let mut counts = Facts::new();
    for name in names {
        let count: i64 = connection
            .query_row(
                &format!("SELECT count(*) FROM {}", quote_ident(&name)),
                [],
                |row| row.get(0),
            )
            .map_err(sqlite_error(path))?;
        counts.insert(name, count.into());
    }
    Ok(counts)
}

pub fn back_up(
    name: &str,
    source: &SqliteSource,
    set_dir: &Path,
    scratch: &Path,
    stop: &Stop,
) -> Result<SourceBackup, SourceError> {
    let path = PathBuf::from(&source.path);
    if !path.is_file() {
        return Err(SourceError::Missing { path });
    }
    let copy_dir = tempfile::Builder::new()
        .prefix("sqlite-")
        .tempdir_in(scratch)
        .map_err(SourceError::io("create a folder in", scratch))?;
    let copy = copy_dir.path().join("copy.sqlite3");
    {
        let live = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sqlite_error(&path))?;
        live.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sqlite_error(&path))?;
        let mut target = Connection::open(&copy).map_err(sqlite_error(&copy))?;
        // All pages in one step: the copy is taken under one read transaction, so a writer
        // cannot make it restart forever and the copy is one consistent snapshot.
        let backup =
            rusqlite::backup::Backup::new(&live, &mut target).map_err(sqlite_error(&path))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match backup.step(-1).map_err(sqlite_error(&path))? {
                rusqlite::backup::StepResult::Done => break,
                _ if stop.is_stopped() => return Err(SourceError::Stopped),
                _ if std::time::Instant::now() > deadline => {
                    return Err(SourceError::Sqlite {
                        path: path.clone(),
                        message: "the database stayed locked for 60 s; the copy was not taken"
                            .into(),
                    });
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
    }
    // The copy itself is one call; a stop that came during it is honoured before the
    // integrity check and the compression, which take as long again.
    if stop.is_stopped() {
        return Err(SourceError::Stopped);
    }
    let connection = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite_error(&copy))?;
    integrity_check(&connection, &copy)?;
    let counts = row_counts(&connection, &copy, source.count_rows.as_deref())?;
    drop(connection);

    let artifact = format!("{name}.sqlite3.zst");
    let writer = ArtifactWriter::create(set_dir, &artifact)?;
    let mut encoder = zstd_encoder(writer, 3, &artifact)?;
    let mut input = StopRead {
        inner: std::fs::File::open(&copy).map_err(SourceError::io("open", &copy))?,
        stop,
    };
    let copied = std::io::copy(&mut input, &mut encoder);
    if stop.is_stopped() {
        return Err(SourceError::Stopped);
    }
    let bytes = copied.map_err(SourceError::io("write", set_dir.join(&artifact)))?;
    let digest = finish_zstd(encoder, &set_dir.join(&artifact))?;
    let mut facts = Facts::new();
    facts.insert(
        "row_counts".into(),
        serde_json::Value::Object(counts.into_iter().collect()),
    );
    facts.insert("bytes".into(), bytes.into());
    Ok(SourceBackup {
        artifacts: vec![ArtifactEntry {
            name: artifact,
            source: name.to_owned(),
            kind: ArtifactKind::SqliteZstd,
            size: digest.size,
            sha256: digest.sha256,
            facts,
        }],
        warnings: Vec::new(),
    })
}

/// Replaces the database file `target` atomically with the backup (an existing file only
/// with `force`). Its `-wal` and `-shm` files are removed first: SQLite would otherwise
/// replay the old database's journal onto the restored one.
pub fn restore(artifact: &Path, target: &Path, force: bool) -> Result<Facts, SourceError> {
    if target.exists() && !force {
        return Err(SourceError::TargetInUse {
            target: target.display().to_string(),
            why: "exists".into(),
        });
    }
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(SourceError::io("create", parent))?;
    let marker = crate::leftovers::claim_staging(parent);
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{marker}"))
        .suffix(".sqlite3")
        .tempfile_in(parent)
        .map_err(SourceError::io("create a file in", parent))?;
    let file = open_verified(artifact)?;
    let mut decoder = zstd::Decoder::with_buffer(BufReader::with_capacity(1 << 20, file))
        .map_err(SourceError::io("decompress", artifact))?;
    std::io::copy(&mut decoder, temp.as_file_mut())
        .map_err(SourceError::io("write", temp.path()))?;
    temp.as_file()
        .sync_all()
        .map_err(SourceError::io("fsync", temp.path()))?;
    let counts = {
        let connection = Connection::open_with_flags(temp.path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sqlite_error(temp.path()))?;
        integrity_check(&connection, temp.path())?;
        row_counts(&connection, temp.path(), None)?
    };
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = target.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(SourceError::io("remove", PathBuf::from(side))(error)),
        }
    }
    temp.persist(target)
        .map_err(|error| SourceError::io("rename into", target)(error.error))?;
    crate::storage::sync_dir(parent)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_backup_writes_no_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.sqlite3");
        Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let set = dir.path().join("set");
        std::fs::create_dir(&set).unwrap();
        let stop = Stop::new();
        stop.stop();
        let source = SqliteSource {
            path: db.display().to_string(),
            count_rows: None,
        };
        match back_up("db", &source, &set, dir.path(), &stop) {
            Err(SourceError::Stopped) => {}
            Err(error) => panic!("expected a stop, got {error}"),
            Ok(_) => panic!("a stopped backup produced an artifact"),
        }
        assert_eq!(std::fs::read_dir(&set).unwrap().count(), 0);
    }
}
