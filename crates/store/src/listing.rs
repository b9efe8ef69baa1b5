//! A cache that checks itself. Each cached unit (a checkpoint and its
//! sidecar, a discovery, a STUDY §8 result) is one or more files plus a
//! listing, `<stem>.sha256`, in `sha256sum` format (so `sha256sum -c` reads
//! it too), written after the files. A unit is reused only when its listing
//! is there and every file matches its recorded hash: a file edited,
//! truncated, or left by an interrupted run without its listing is
//! recomputed instead of believed.
//!
//! ```
//! use modcirc_store::listing::{listing_path, lookup, record, Lookup};
//! let dir = std::env::temp_dir().join(format!("modcirc-cache-doc-{}", std::process::id()));
//! let file = dir.join("unit.json");
//! let listing = listing_path(&file);
//! assert!(matches!(lookup(&listing, &[&file]), Lookup::Miss));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(&file, b"{}").unwrap();
//! record(&listing, &[(&file, b"{}")]).unwrap();
//! assert!(matches!(lookup(&listing, &[&file]), Lookup::Hit(_)));
//! std::fs::write(&file, b"{ }").unwrap(); // edited since
//! assert!(matches!(lookup(&listing, &[&file]), Lookup::Stale(_)));
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::read::{read_inside, read_regular};
use crate::StoreError;

/// The most a listing may hold (a few lines of hashes and names).
pub const MAX_LISTING_BYTES: u64 = 1 << 20;

/// The most a cached unit's file may hold: a checkpoint of about 500
/// million weights. Larger files are not read, and the unit is recomputed.
pub const MAX_UNIT_BYTES: u64 = 2 << 30;

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 12 hex digits of a SHA-256 over `parts`, each length-prefixed:
/// the content key of a cached unit.
pub fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    Ok(sha256_hex(&bytes))
}

/// The listing of the unit whose main file is `path`: its extension
/// replaced by `sha256`.
pub fn listing_path(path: &Path) -> PathBuf {
    path.with_extension("sha256")
}

/// Records a unit's files (path, bytes as written) in `listing`, atomically
/// and after them. The files must share the listing's directory.
pub fn record(listing: &Path, files: &[(&Path, &[u8])]) -> Result<(), StoreError> {
    let mut text = String::new();
    for (path, bytes) in files {
        let name = path.file_name().ok_or_else(|| StoreError::Mismatch(format!("{}: no file name", path.display())))?;
        text.push_str(&format!("{}  {}\n", sha256_hex(bytes), name.to_string_lossy()));
    }
    write_atomic(listing, text.as_bytes())
}

/// What the cache holds for a unit.
#[derive(Debug)]
pub enum Lookup {
    /// Every file, as read, matching its recorded hash (in the order asked).
    Hit(Vec<Vec<u8>>),
    /// Nothing there: compute it.
    Miss,
    /// Something there that cannot be trusted, and why: recompute it.
    Stale(String),
}

/// Looks a unit up: `files` must all be listed in `listing` and match.
pub fn lookup(listing: &Path, files: &[&Path]) -> Lookup {
    let text = match read_regular(listing, MAX_LISTING_BYTES) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return match files.iter().find(|f| f.exists()) {
                Some(f) => Lookup::Stale(format!(
                    "{} has no recorded SHA-256 ({} is missing: an interrupted run?)",
                    f.display(),
                    listing.display()
                )),
                None => Lookup::Miss,
            };
        }
        Err(e) => return Lookup::Stale(e.to_string()),
    };
    let recorded = |name: &str| recorded_in(&text, name);
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(expected) = recorded(&name) else {
            return Lookup::Stale(format!("{} does not list {name}", listing.display()));
        };
        let bytes = match read_regular(f, MAX_UNIT_BYTES) {
            Ok(b) => b,
            Err(e) => return Lookup::Stale(e.to_string()),
        };
        let found = sha256_hex(&bytes);
        if found != expected {
            return Lookup::Stale(format!(
                "{} does not match its recorded SHA-256 (edited or truncated since it was written)",
                f.display()
            ));
        }
        out.push(bytes);
    }
    Lookup::Hit(out)
}

/// The SHA-256 a listing's text records for the file `name`.
fn recorded_in(listing: &str, name: &str) -> Option<String> {
    listing.lines().find_map(|l| l.split_once("  ").filter(|(_, n)| *n == name).map(|(h, _)| h.to_string()))
}

/// The SHA-256 the unit's listing records for its main file `path`,
/// without reading the file: whether, and as what, a unit is done (a
/// sweep's discoveries are keyed by their model's hash).
pub fn recorded_sha256(path: &Path) -> Option<String> {
    let text = read_regular(&listing_path(path), MAX_LISTING_BYTES).ok()?;
    recorded_in(&String::from_utf8_lossy(&text), &path.file_name()?.to_string_lossy())
}

/// A cached JSON unit, parsed, and its bytes, when its listing says it is
/// intact; `Ok(None)` when there is none; `Err(why)` when something is
/// there that cannot be trusted (stale, or not the JSON it should be).
pub fn fetch_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<(T, Vec<u8>)>, String> {
    match lookup(&listing_path(path), &[path]) {
        Lookup::Hit(mut files) => {
            let bytes = files.pop().unwrap_or_default();
            match serde_json::from_slice(&bytes) {
                Ok(v) => Ok(Some((v, bytes))),
                Err(e) => Err(format!("{}: {e}", path.display())),
            }
        }
        Lookup::Miss => Ok(None),
        Lookup::Stale(why) => Err(why),
    }
}

/// Writes a JSON unit (pretty) atomically and records it in its listing;
/// returns the bytes written.
pub fn store_json<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Json { path: path.into(), source: e })?;
    write_atomic(path, &bytes)?;
    record(&listing_path(path), &[(path, &bytes)])?;
    Ok(bytes)
}

/// A file of a run's output, as `results.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Relative to the output directory.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

impl FileRecord {
    /// The record of `bytes`, written at `path` (under `base`).
    pub fn of(base: &Path, path: &Path, bytes: &[u8]) -> FileRecord {
        let path = path.strip_prefix(base).unwrap_or(path).display().to_string();
        FileRecord { path, sha256: sha256_hex(bytes), bytes: bytes.len() as u64 }
    }

    /// Checks the file under `base`: a regular file inside it (reached
    /// through no link), of its size (compared before it is read), matching
    /// its hash.
    pub fn verify(&self, base: &Path) -> Result<(), StoreError> {
        self.read(base).map(|_| ())
    }

    /// [`FileRecord::verify`], returning the bytes.
    pub fn read(&self, base: &Path) -> Result<Vec<u8>, StoreError> {
        let path = base.join(&self.path);
        let data = read_inside(base, &self.path, self.bytes).map_err(|e| match e {
            StoreError::TooLarge { bytes, .. } => StoreError::Mismatch(format!(
                "{} holds {bytes} bytes, results.json records {} (truncated or replaced)",
                path.display(),
                self.bytes
            )),
            e => e,
        })?;
        if data.len() as u64 != self.bytes {
            return Err(StoreError::Mismatch(format!(
                "{} holds {} bytes, results.json records {} (truncated or replaced)",
                path.display(),
                data.len(),
                self.bytes
            )));
        }
        if sha256_hex(&data) != self.sha256 {
            return Err(StoreError::Mismatch(format!(
                "{} does not match the SHA-256 results.json records",
                path.display()
            )));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_its_listing_or_missing_from_it_is_stale_not_a_hit() {
        let dir = std::env::temp_dir().join(format!("modcirc-cache-{}", crate::atomic::random_hex(4)));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("m.safetensors"), dir.join("m.json"));
        std::fs::write(&a, b"weights").unwrap();
        let listing = listing_path(&a);
        assert!(matches!(lookup(&listing, &[&a, &b]), Lookup::Stale(ref m) if m.contains("no recorded SHA-256")));
        record(&listing, &[(&a, b"weights")]).unwrap();
        assert!(matches!(lookup(&listing, &[&a, &b]), Lookup::Stale(ref m) if m.contains("does not list m.json")));
        std::fs::write(&b, b"{}").unwrap();
        record(&listing, &[(&a, b"weights"), (&b, b"{}")]).unwrap();
        let Lookup::Hit(files) = lookup(&listing, &[&a, &b]) else { panic!("a hit") };
        assert_eq!(files, [b"weights".to_vec(), b"{}".to_vec()]);
        std::fs::write(&a, b"weight").unwrap();
        assert!(matches!(lookup(&listing, &[&a, &b]), Lookup::Stale(ref m) if m.contains("does not match")));
        let r = FileRecord::of(&dir, &b, b"{}");
        assert_eq!(r.path, "m.json");
        r.verify(&dir).unwrap();
        std::fs::write(&b, b"{ }").unwrap();
        assert!(r.verify(&dir).unwrap_err().to_string().contains("3 bytes, results.json records 2"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_fifo_or_a_huge_file_in_the_cache_is_stale_at_once_not_read() {
        let dir = std::env::temp_dir().join(format!("modcirc-cache-{}", crate::atomic::random_hex(4)));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = |p: &Path| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        };
        let unit = dir.join("u.json");
        let listing = listing_path(&unit);
        std::fs::write(&unit, b"{}").unwrap();
        fifo(&listing);
        assert!(matches!(lookup(&listing, &[&unit]), Lookup::Stale(ref m) if m.contains("a FIFO")));
        assert_eq!(recorded_sha256(&unit), None);
        std::fs::remove_file(&listing).unwrap();
        std::fs::File::create(&listing).unwrap().set_len(3 << 30).unwrap();
        assert!(matches!(lookup(&listing, &[&unit]), Lookup::Stale(ref m) if m.contains("not read")));
        std::fs::remove_file(&listing).unwrap();
        record(&listing, &[(&unit, b"{}")]).unwrap();
        std::fs::remove_file(&unit).unwrap();
        fifo(&unit);
        assert!(matches!(lookup(&listing, &[&unit]), Lookup::Stale(ref m) if m.contains("a FIFO")));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
