//! Reading files a run did not necessarily write itself (a cache, a
//! `results.json` and what it lists): only regular files, never through a
//! link, never blocking on a FIFO, and never past a stated size.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

use crate::atomic::kind_of;
use crate::StoreError;

/// Reads `path`, which must be a regular file of at most `limit` bytes.
/// The path is not followed if it is a link, a FIFO or device is refused
/// before it is opened (and, opened without blocking, again on the open
/// descriptor), and the size is compared before a byte is read.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, StoreError> {
    let refuse = |t: std::fs::FileType| match kind_of(t) {
        None => Ok(()),
        Some(kind) => Err(StoreError::Unreadable { path: path.into(), kind }),
    };
    refuse(std::fs::symlink_metadata(path).map_err(|e| StoreError::io(path, e))?.file_type())?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    let meta = file.metadata().map_err(|e| StoreError::io(path, e))?;
    refuse(meta.file_type())?;
    let too_large = |bytes: u64| StoreError::TooLarge { path: path.into(), bytes, limit };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while it is read stops one byte past the limit.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| StoreError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads `relative` under `base` (a path a run's own files recorded) with
/// [`read_regular`]: it must be relative, stay inside `base` (no `..`, no
/// root) and pass through no link on its way there.
pub fn read_inside(base: &Path, relative: &str, limit: u64) -> Result<Vec<u8>, StoreError> {
    let rel = Path::new(relative);
    let outside = || StoreError::Outside { path: relative.into(), base: base.into() };
    if relative.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(outside());
    }
    let mut at = base.to_path_buf();
    let parts: Vec<Component> = rel.components().collect();
    for c in &parts[..parts.len() - 1] {
        at.push(c);
        let meta = std::fs::symlink_metadata(&at).map_err(|e| StoreError::io(&at, e))?;
        if !meta.file_type().is_dir() {
            let kind = kind_of(meta.file_type()).unwrap_or("a regular file");
            return Err(StoreError::Unreadable { path: at, kind });
        }
    }
    read_regular(&base.join(rel), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("modcirc-read-{}", crate::atomic::random_hex(6)));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        d
    }

    #[test]
    fn only_regular_files_within_their_size_are_read() {
        let d = scratch();
        std::fs::write(d.join("sub/a.txt"), b"hello").unwrap();
        assert_eq!(read_regular(&d.join("sub/a.txt"), 5).unwrap(), b"hello");
        assert_eq!(read_inside(&d, "sub/a.txt", 5).unwrap(), b"hello");
        let e = read_regular(&d.join("sub/a.txt"), 4).unwrap_err().to_string();
        assert!(e.contains("5 bytes") && e.contains("at most 4"), "{e}");
        // A huge sparse file is refused by its size, not read.
        let big = std::fs::File::create(d.join("big")).unwrap();
        big.set_len(3 << 30).unwrap();
        let t = std::time::Instant::now();
        assert!(matches!(read_regular(&d.join("big"), 1 << 20), Err(StoreError::TooLarge { .. })));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        // A FIFO neither blocks nor is read; a device is refused.
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&fifo, 10).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
        assert!(read_regular(Path::new("/dev/zero"), 10).unwrap_err().to_string().contains("a device"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn paths_leaving_the_base_or_passing_through_links_are_refused() {
        let d = scratch();
        let outside = scratch();
        std::fs::write(outside.join("victim"), b"secret").unwrap();
        std::fs::write(d.join("sub/ok"), b"fine").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("linked")).unwrap();
        std::os::unix::fs::symlink(outside.join("victim"), d.join("sub/file-link")).unwrap();
        let victim = outside.join("victim").display().to_string();
        for bad in
            ["../x/victim", "sub/../../victim", victim.as_str(), "", "./sub/ok", "linked/victim", "sub/file-link"]
        {
            let e = read_inside(&d, bad, 100);
            assert!(e.is_err(), "{bad:?} was read");
        }
        assert!(read_inside(&d, "linked/victim", 100).unwrap_err().to_string().contains("symbolic link"));
        assert_eq!(read_inside(&d, "sub/ok", 100).unwrap(), b"fine");
        std::fs::remove_dir_all(d).unwrap();
        std::fs::remove_dir_all(outside).unwrap();
    }
}
