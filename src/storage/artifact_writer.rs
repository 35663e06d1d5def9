//! The artifact writer: hashes while writing, under a temporary name, then fsync and rename.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::StoreError;

/// What a finished artifact weighs and hashes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactDigest {
    pub size: u64,
    /// Lowercase hex sha256 of the bytes on disk.
    pub sha256: String,
}

/// Writes one artifact into a set folder.
///
/// Every byte is hashed as it is handed over, so the digest costs no second read pass. The data
/// goes to `.NAME.partial` (mode 0600); [`ArtifactWriter::finish`] flushes, fsyncs, renames it
/// to `NAME` and fsyncs the folder, so a name without the `.partial` suffix always means a
/// complete file. Dropping an unfinished writer removes the temporary file (a full disk or a
/// failed producer leaves nothing behind); only a kill -9 can leave one, inside a set that
/// then has no manifest and therefore counts as incomplete.
///
/// The bytes go in 1 MiB chunks through small bounded queues to two helper threads, one
/// hashing and one writing, in parallel: the producer (tar, zstd, pg_dump's pipe) never waits
/// for sha256 and the hash never waits for the disk, so hashing stays off the critical path,
/// and memory stays at a few chunks whatever the size.
pub struct ArtifactWriter {
    buffer: Vec<u8>,
    worker: Option<Worker>,
    size: u64,
    temp_path: PathBuf,
    final_path: PathBuf,
    /// When set, bytes that hash to anything else never get the final name.
    expected_sha256: Option<String>,
}

struct Worker {
    to_writer: SyncSender<Arc<Vec<u8>>>,
    to_hasher: Option<SyncSender<Arc<Vec<u8>>>>,
    error: Arc<Mutex<Option<io::Error>>>,
    writer: JoinHandle<File>,
    hasher: Option<JoinHandle<Sha256>>,
}

/// Chunk size: large writes amortize syscalls and the queue hand-over.
const CHUNK: usize = 1 << 20;
/// Chunks in flight: enough to ride out a slow fsync or a busy core, small enough for memory.
const QUEUE: usize = 3;

/// Artifact names become file (or object) names: no separators, no hidden or temporary names.
pub fn check_artifact_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name != "manifest.json"
        && name != "verify.json"
        && !name.contains(['/', '\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadArtifactName {
            name: name.to_owned(),
        })
    }
}

fn copy_error(error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), error.to_string())
}

impl ArtifactWriter {
    /// Starts `dir/name`. The folder must exist (the set folder).
    pub fn create(dir: &Path, name: &str) -> Result<ArtifactWriter, StoreError> {
        ArtifactWriter::start(dir, name, true)
    }

    /// Starts `dir/name` for bytes whose sha256 is known up front (a copy between storages):
    /// [`ArtifactWriter::finish`] refuses anything else and leaves no file.
    pub fn create_checked(
        dir: &Path,
        name: &str,
        expected_sha256: &str,
    ) -> Result<ArtifactWriter, StoreError> {
        let mut writer = ArtifactWriter::start(dir, name, true)?;
        writer.expected_sha256 = Some(expected_sha256.to_ascii_lowercase());
        Ok(writer)
    }

    /// The same without hashing. Only the hashing-overhead benchmark uses this.
    #[cfg(test)]
    pub fn create_unhashed(dir: &Path, name: &str) -> Result<ArtifactWriter, StoreError> {
        ArtifactWriter::start(dir, name, false)
    }

    fn start(dir: &Path, name: &str, hash: bool) -> Result<ArtifactWriter, StoreError> {
        check_artifact_name(name)?;
        let temp_path = dir.join(format!(".{name}.partial"));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp_path)
            .map_err(StoreError::io("create", &temp_path))?;
        let (to_writer, written) = sync_channel::<Arc<Vec<u8>>>(QUEUE);
        let error = Arc::new(Mutex::new(None));
        let worker_error = error.clone();
        let writer = std::thread::spawn(move || {
            let mut failed = false;
            for chunk in written {
                // After a failure the queue is still drained so the producer never blocks;
                // the error reaches it on its next write.
                if !failed && let Err(error) = file.write_all(&chunk) {
                    failed = true;
                    *worker_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                }
            }
            file
        });
        let (to_hasher, hasher) = if hash {
            let (to_hasher, hashed) = sync_channel::<Arc<Vec<u8>>>(QUEUE);
            let hasher = std::thread::spawn(move || {
                let mut hasher = Sha256::new();
                for chunk in hashed {
                    hasher.update(chunk.as_slice());
                }
                hasher
            });
            (Some(to_hasher), Some(hasher))
        } else {
            (None, None)
        };
        Ok(ArtifactWriter {
            buffer: Vec::with_capacity(CHUNK),
            worker: Some(Worker {
                to_writer,
                to_hasher,
                error,
                writer,
                hasher,
            }),
            size: 0,
            temp_path,
            final_path: dir.join(name),
            expected_sha256: None,
        })
    }

    /// Hands the current chunk to the worker; fails with the worker's write error, if any.
    fn send(&mut self) -> io::Result<()> {
        let worker = self
            .worker
            .as_ref()
            .ok_or_else(|| io::Error::other("artifact already finished"))?;
        if let Some(error) = worker
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Err(copy_error(error));
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Arc::new(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        let stopped = || io::Error::other("the artifact writer thread stopped");
        if let Some(to_hasher) = &worker.to_hasher {
            to_hasher.send(chunk.clone()).map_err(|_| stopped())?;
        }
        worker.to_writer.send(chunk).map_err(|_| stopped())
    }

    /// Waits for the worker and returns the file and hasher, or the first write error.
    fn join(&mut self) -> io::Result<(File, Sha256)> {
        let worker = self
            .worker
            .take()
            .ok_or_else(|| io::Error::other("artifact already finished"))?;
        let Worker {
            to_writer,
            to_hasher,
            error,
            writer,
            hasher,
        } = worker;
        drop(to_writer);
        drop(to_hasher);
        let panicked = |_| io::Error::other("an artifact writer thread panicked");
        let file = writer.join().map_err(panicked)?;
        let hasher = match hasher {
            Some(hasher) => hasher.join().map_err(panicked)?,
            None => Sha256::new(),
        };
        if let Some(error) = error.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(error);
        }
        Ok((file, hasher))
    }

    /// Makes the artifact durable under its final name and returns its digest.
    pub fn finish(mut self) -> Result<ArtifactDigest, StoreError> {
        let temp = self.temp_path.clone();
        let durable = (|| {
            self.send().map_err(StoreError::io("write", &temp))?;
            let (file, hasher) = self.join().map_err(StoreError::io("write", &temp))?;
            let sha256 = hex(&hasher.finalize());
            if let Some(expected) = &self.expected_sha256
                && *expected != sha256
            {
                return Err(StoreError::HashMismatch {
                    name: self.final_path.display().to_string(),
                    expected: expected.clone(),
                    actual: sha256,
                });
            }
            file.sync_all().map_err(StoreError::io("fsync", &temp))?;
            drop(file);
            std::fs::rename(&temp, &self.final_path).map_err(StoreError::io("rename", &temp))?;
            Ok(sha256)
        })();
        let sha256 = match durable {
            Ok(sha256) => sha256,
            Err(error) => {
                // Nothing half-written keeps a name; the worker is already joined or gone.
                let _ = self.join();
                let _ = std::fs::remove_file(&temp);
                return Err(error);
            }
        };
        let dir = self.final_path.parent().unwrap_or(Path::new("."));
        sync_dir(dir)?;
        Ok(ArtifactDigest {
            size: self.size,
            sha256,
        })
    }
}

impl Write for ArtifactWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        let n = buf.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        self.size += n as u64;
        crate::meter::add(n as u64);
        Ok(n)
    }

    /// Hands buffered bytes to the writer thread; durability comes only from `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ArtifactWriter {
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// fsyncs a folder so that a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync", dir))
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Writes a small file atomically: temp name, fsync, rename, fsync the folder. Used for the
/// manifest and the verify record.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let temp = dir.join(format!(".{name}.partial"));
    let path = dir.join(name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .map_err(StoreError::io("create", &temp))?;
        file.write_all(bytes)
            .map_err(StoreError::io("write", &temp))?;
        file.sync_all().map_err(StoreError::io("fsync", &temp))?;
        std::fs::rename(&temp, &path).map_err(StoreError::io("rename", &temp))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The hashing-overhead measurements bench/backup.sh runs.
#[cfg(test)]
mod bench;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn digest_matches_the_bytes_on_disk_and_no_temp_file_remains() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ArtifactWriter::create(dir.path(), "a.bin").unwrap();
        writer.write_all(b"hello ").unwrap();
        writer.write_all(b"world").unwrap();
        let digest = writer.finish().unwrap();
        let on_disk = std::fs::read(dir.path().join("a.bin")).unwrap();
        assert_eq!(on_disk, b"hello world");
        assert_eq!(digest.size, 11);
        assert_eq!(digest.sha256, hex(&Sha256::digest(b"hello world")));
        let mode = std::fs::metadata(dir.path().join("a.bin"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.bin"]);
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ArtifactWriter::create(dir.path(), "a.bin").unwrap();
        writer.write_all(b"partial").unwrap();
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn names_that_could_escape_or_hide_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "manifest.json"] {
            assert!(check_artifact_name(bad).is_err(), "{bad}");
        }
        assert!(check_artifact_name("db.pgdump.zst").is_ok());
    }
}
