//! The artifact writer: hashes while writing, under a temporary name, then fsync and rename.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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
pub struct ArtifactWriter {
    file: Option<BufWriter<File>>,
    hasher: Sha256,
    size: u64,
    temp_path: PathBuf,
    final_path: PathBuf,
    hash: bool,
}

/// Large writes amortize syscalls; 1 MiB keeps memory flat whatever the artifact size.
const BUFFER: usize = 1 << 20;

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

impl ArtifactWriter {
    /// Starts `dir/name`. The folder must exist (the set folder).
    pub fn create(dir: &Path, name: &str) -> Result<ArtifactWriter, StoreError> {
        check_artifact_name(name)?;
        let temp_path = dir.join(format!(".{name}.partial"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp_path)
            .map_err(StoreError::io("create", &temp_path))?;
        Ok(ArtifactWriter {
            file: Some(BufWriter::with_capacity(BUFFER, file)),
            hasher: Sha256::new(),
            size: 0,
            temp_path,
            final_path: dir.join(name),
            hash: true,
        })
    }

    /// Turns hashing off. Only the hashing-overhead benchmark uses this.
    #[doc(hidden)]
    pub fn without_hashing(mut self) -> ArtifactWriter {
        self.hash = false;
        self
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the artifact durable under its final name and returns its digest.
    pub fn finish(mut self) -> Result<ArtifactDigest, StoreError> {
        let writer = self.file.take().expect("finish is called once");
        let file = writer.into_inner().map_err(|error| StoreError::Io {
            action: "write",
            path: self.temp_path.clone(),
            source: error.into_error(),
        })?;
        file.sync_all()
            .map_err(StoreError::io("fsync", &self.temp_path))?;
        drop(file);
        std::fs::rename(&self.temp_path, &self.final_path)
            .map_err(StoreError::io("rename", &self.temp_path))?;
        let dir = self.final_path.parent().unwrap_or(Path::new("."));
        sync_dir(dir)?;
        let digest = std::mem::take(&mut self.hasher).finalize();
        Ok(ArtifactDigest {
            size: self.size,
            sha256: hex(&digest),
        })
    }
}

impl Write for ArtifactWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("artifact already finished"))?;
        let n = file.write(buf)?;
        if self.hash {
            self.hasher.update(&buf[..n]);
        }
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for ArtifactWriter {
    fn drop(&mut self) {
        if let Some(writer) = self.file.take() {
            // The buffered tail would only fail again on a full disk; the file goes anyway.
            let (file, _) = writer.into_parts();
            drop(file);
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
