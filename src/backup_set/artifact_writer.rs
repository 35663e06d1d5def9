//! The artifact writer: hashes while writing, under a temporary name, then fsync and rename.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
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
/// Hashing and the write syscalls run on a helper thread fed 1 MiB chunks through a small
/// bounded queue: the producer (tar, zstd, pg_dump's pipe) never waits for sha256, which keeps
/// hashing off the critical path, and memory stays at a few chunks whatever the size.
pub struct ArtifactWriter {
    buffer: Vec<u8>,
    worker: Option<Worker>,
    size: u64,
    temp_path: PathBuf,
    final_path: PathBuf,
}

struct Worker {
    chunks: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
    error: Arc<Mutex<Option<io::Error>>>,
    handle: JoinHandle<(File, Sha256)>,
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

    /// The same without hashing. Only the hashing-overhead benchmark uses this.
    #[doc(hidden)]
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
        let (chunks, queue) = sync_channel::<Vec<u8>>(QUEUE);
        let (give_back, spare) = sync_channel::<Vec<u8>>(QUEUE + 2);
        let error = Arc::new(Mutex::new(None));
        let worker_error = error.clone();
        let handle = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            let mut failed = false;
            for mut chunk in queue {
                if !failed {
                    if hash {
                        hasher.update(&chunk);
                    }
                    if let Err(error) = file.write_all(&chunk) {
                        failed = true;
                        *worker_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                    }
                }
                chunk.clear();
                let _ = give_back.try_send(chunk);
            }
            (file, hasher)
        });
        Ok(ArtifactWriter {
            buffer: Vec::with_capacity(CHUNK),
            worker: Some(Worker {
                chunks,
                spare,
                error,
                handle,
            }),
            size: 0,
            temp_path,
            final_path: dir.join(name),
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
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
        let next = worker
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buffer, next);
        worker
            .chunks
            .send(full)
            .map_err(|_| io::Error::other("the artifact writer thread stopped"))
    }

    /// Waits for the worker and returns the file and hasher, or the first write error.
    fn join(&mut self) -> io::Result<(File, Sha256)> {
        let worker = self
            .worker
            .take()
            .ok_or_else(|| io::Error::other("artifact already finished"))?;
        let Worker {
            chunks,
            error,
            handle,
            ..
        } = worker;
        drop(chunks);
        let joined = handle
            .join()
            .map_err(|_| io::Error::other("the artifact writer thread panicked"))?;
        if let Some(error) = error.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(error);
        }
        Ok(joined)
    }

    /// Makes the artifact durable under its final name and returns its digest.
    pub fn finish(mut self) -> Result<ArtifactDigest, StoreError> {
        let temp = self.temp_path.clone();
        let durable = (|| {
            self.send().map_err(StoreError::io("write", &temp))?;
            let (file, hasher) = self.join().map_err(StoreError::io("write", &temp))?;
            file.sync_all().map_err(StoreError::io("fsync", &temp))?;
            drop(file);
            std::fs::rename(&temp, &self.final_path).map_err(StoreError::io("rename", &temp))?;
            Ok(hasher)
        })();
        let hasher = match durable {
            Ok(hasher) => hasher,
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
            sha256: hex(&hasher.finalize()),
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
