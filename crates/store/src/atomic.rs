//! Files written whole or not at all, and never through a link.
//!
//! A file is written to a temporary file in its directory, created with
//! `O_CREAT | O_EXCL` (which never follows or reuses anything already at
//! that name) under an unpredictable name, then renamed over the target.
//! The target is replaced only when it is missing or a regular file: a
//! device, FIFO, socket, directory or link at an output path is refused.
//!
//! A temporary name is `<file>.tmp-<pid>-<random>-<host>[.<ext>]`: the
//! process and host let [`remove_stale_temps`] tell a killed run's file
//! from a live one's; the random part makes the name unguessable.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// This machine's host name, as the kernel has it (`unknown` where it
/// cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The host name as it appears in a temporary file's name: letters,
/// digits, `-` and `_` only (a `/` or `.` in a host name would break the
/// name's parse).
pub fn host_in_name() -> String {
    host_name().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// `n` random bytes as hex, from the operating system.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: the clock and the stack address still make
        // the name hard to guess, and O_EXCL keeps it safe regardless.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = t.as_nanos() as u64 ^ (&bytes as *const _ as u64);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed.rotate_left(8 * i as u32 % 64) & 0xff) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a path is, where it is not a regular file.
pub(crate) fn kind_of(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Refuses an output path that exists and is not a regular file.
pub fn check_output(path: &Path) -> Result<(), StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => match kind_of(m.file_type()) {
            None => Ok(()),
            Some(kind) => Err(StoreError::NotRegular { path: path.into(), kind }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// A temporary file beside its target, removed when dropped unless
/// persisted: no temporary file outlives a failed write.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates an empty temporary file for `target` (exclusively, under an
    /// unpredictable name; `ext` appended where a writer picks its format
    /// by the extension), making the target's directory if needed.
    pub fn create(target: &Path, ext: Option<&str>) -> Result<(TempFile, std::fs::File), StoreError> {
        let dir = dir_of(target);
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        check_output(target)?;
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let ext = ext.map(|e| format!(".{e}")).unwrap_or_default();
        for _ in 0..8 {
            let tmp = dir.join(format!("{name}.tmp-{}-{}-{}{ext}", std::process::id(), random_hex(8), host_in_name()));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => return Ok((TempFile { path: tmp, persisted: false }, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(&tmp, e)),
            }
        }
        Err(StoreError::io(target, std::io::Error::other("no free temporary name after 8 tries")))
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary file over `target` (still refusing a target
    /// that is not a regular file).
    pub fn persist(mut self, target: &Path) -> Result<(), StoreError> {
        check_output(target)?;
        std::fs::rename(&self.path, target).map_err(|e| StoreError::io(target, e))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The directory `path` is written into.
pub fn dir_of(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` through a temporary file, so that a file at
/// `path` is always complete.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let (tmp, mut f) = TempFile::create(path, None)?;
    f.write_all(bytes).map_err(|e| StoreError::io(tmp.path(), e))?;
    drop(f);
    tmp.persist(path)
}

/// Writes several files that belong together (a model and its sidecar):
/// every one to its temporary file first, and only when all are written
/// are they renamed into place, in the order given. A failed write (a
/// full disk) replaces none of them.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> Result<(), StoreError> {
    let mut written = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        let (tmp, mut f) = TempFile::create(path, None)?;
        f.write_all(bytes).and_then(|_| f.sync_data()).map_err(|e| StoreError::io(tmp.path(), e))?;
        written.push((tmp, *path));
    }
    for (tmp, path) in written {
        tmp.persist(path)?;
    }
    Ok(())
}

/// The process and host that wrote a temporary file, from its name.
fn temp_owner(name: &str) -> Option<(u32, &str)> {
    let (_, rest) = name.rsplit_once(".tmp-")?;
    let mut parts = rest.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let random = parts.next()?;
    if random.len() != 16 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let host = parts.next()?;
    let host = host.split_once('.').map_or(host, |(h, _)| h);
    (!host.is_empty()).then_some((pid, host))
}

/// Removes, from `dir`, the temporary files of [`TempFile`] that a killed
/// run left: only a regular file (never a link) owned by this user, named
/// as a temporary file is, of a process that is gone. A process is asked of
/// `/proc` on its own host only; another host's files (a directory shared
/// over the network), or any where there is no `/proc`, count as gone once
/// untouched for a day. Returns what was removed; a directory that does
/// not exist holds nothing.
pub fn remove_stale_temps(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let proc = Path::new("/proc/self").exists();
    let here = host_in_name();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((pid, host)) = temp_owner(&name) else { continue };
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if !meta.file_type().is_file() || meta.uid() != me {
            continue;
        }
        let gone = if proc && host == here {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            let day = std::time::Duration::from_secs(86_400);
            meta.modified().is_ok_and(|t| t.elapsed().is_ok_and(|age| age > day))
        };
        if gone {
            std::fs::remove_file(entry.path()).map_err(|e| StoreError::io(&entry.path(), e))?;
            removed.push(entry.path());
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("modcirc-atomic-{name}-{}", random_hex(4)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn temporary_names_are_unpredictable_and_parse_back() {
        let d = dir("names");
        let target = d.join("w.json");
        let (a, _) = TempFile::create(&target, None).unwrap();
        let (b, _) = TempFile::create(&target, Some("png")).unwrap();
        assert_ne!(a.path(), b.path());
        for t in [&a, &b] {
            let name = t.path().file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(temp_owner(&name), Some((std::process::id(), host_in_name().as_str())), "{name}");
        }
        assert!(b.path().to_string_lossy().ends_with(".png"));
        drop((a, b));
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0, "dropped temporaries are removed");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn only_regular_files_are_replaced_and_links_never_written_through() {
        let d = dir("links");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = d.join("out.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = write_atomic(&link, b"{}").unwrap_err().to_string();
        assert!(e.contains("a symbolic link") && e.contains("out.json"), "{e}");
        let sub = d.join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(write_atomic(&sub, b"{}").unwrap_err().to_string().contains("a directory"));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        write_atomic(&victim, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"new");
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 3, "no temporary left: {left:?}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn stale_temps_of_dead_processes_are_removed_and_nothing_else() {
        let d = dir("stale");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let host = host_in_name();
        let stale = d.join(format!("m.json.tmp-{dead}-0123456789abcdef-{host}"));
        let live = d.join(format!("m.json.tmp-{}-0123456789abcdef-{host}", std::process::id()));
        let guessed = d.join(format!("m.json.tmp-{dead}-xyz-{host}"));
        let linked = d.join(format!("n.json.tmp-{dead}-0123456789abcdef-{host}"));
        for p in [&stale, &live, &guessed] {
            std::fs::write(p, b"x").unwrap();
        }
        std::os::unix::fs::symlink(&live, &linked).unwrap();
        assert_eq!(remove_stale_temps(&d).unwrap(), std::slice::from_ref(&stale));
        assert!(live.exists() && guessed.exists() && linked.symlink_metadata().is_ok());
        assert!(remove_stale_temps(&d.join("absent")).unwrap().is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }
}
