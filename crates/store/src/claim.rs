//! Claims: one writer per cached unit when many processes, on one machine
//! or many, share an output directory (a sweep's shards on a network file
//! system).
//!
//! Before computing a unit, a process creates `<main file>.claim` with
//! `O_CREAT | O_EXCL` (exclusive creation: of all the processes that try,
//! one succeeds). The claim names its holder (host, process id and that
//! process's start time, a random token) and its holder refreshes the
//! file's modification time every [`HEARTBEAT`]. A claim is abandoned, and
//! taken over, when its holder's process is gone (same host: asked of
//! `/proc`) or when it has not been refreshed for [`STALE_AFTER`] (any
//! host: a job killed with its node). A takeover renames the old claim to
//! a name of the taker's own (a rename has one winner) before creating its
//! own, and the holder checks, before writing a unit's final files, that
//! the claim still holds its token.
//!
//! What the file system must guarantee: exclusive creation (`O_EXCL`, which
//! NFS has had since version 3), atomic rename within a directory,
//! close-to-open consistency (what one machine wrote and closed, another
//! reads when it opens it), and modification times set by the holder's
//! clock; the machines' clocks must agree to well within [`STALE_AFTER`]
//! (NTP).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::atomic::{host_name, random_hex};
use crate::StoreError;

/// How often a holder refreshes its claim.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// A claim not refreshed for this long is abandoned, whoever holds it.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// Who holds a claim, as its file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's host name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Its process's start time (clock ticks since boot, from
    /// `/proc/<pid>/stat`), so that a reused process id is not taken for
    /// the holder; 0 where there is no `/proc`.
    pub started: u64,
    /// What the holder says it is doing (a shard, a command).
    pub what: String,
    /// Random per claim: tells two claims by one process apart.
    pub token: String,
}

impl Holder {
    fn me(what: &str) -> Holder {
        let pid = std::process::id();
        let token = random_hex(8);
        Holder { host: host_name(), pid, started: process_start(pid).unwrap_or(0), what: what.to_string(), token }
    }

    /// Whether the holder's process is known to be gone: only answerable
    /// on its own host.
    fn gone(&self) -> bool {
        if self.host != host_name() || !Path::new("/proc/self").exists() {
            return false;
        }
        match process_start(self.pid) {
            None => true,
            Some(started) => self.started != 0 && started != self.started,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {} ({})", self.pid, self.host, self.what)
    }
}

/// A process's start time in clock ticks since boot; `None` when it does
/// not exist (or there is no `/proc`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from
    // the last ')'. Field 22 is the start time, the 20th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The claim file of the unit whose main file is `main`.
pub fn claim_path(main: &Path) -> PathBuf {
    let mut p = main.as_os_str().to_owned();
    p.push(".claim");
    PathBuf::from(p)
}

/// A claim's state, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimState {
    /// No claim.
    None,
    /// Held, and refreshed within [`STALE_AFTER`].
    Held(Holder),
    /// Left by a holder that is gone, or not refreshed for too long.
    Abandoned(Holder),
}

/// Reads the claim of `main`'s unit.
pub fn state(main: &Path) -> ClaimState {
    match read_claim(&claim_path(main)) {
        None => ClaimState::None,
        Some((holder, age)) => {
            if holder.gone() || age > STALE_AFTER {
                ClaimState::Abandoned(holder)
            } else {
                ClaimState::Held(holder)
            }
        }
    }
}

/// The claim's holder and how long since it was refreshed. A claim that
/// cannot be read as a holder (a holder killed while writing it, bytes
/// that are not UTF-8, a directory or a dangling link at its name) reads
/// as a holder of unknown host, saying what it is, so that its age alone
/// decides when it is abandoned.
fn read_claim(path: &Path) -> Option<(Holder, Duration)> {
    use std::io::Read;
    let unknown = |what: &str| Holder {
        host: format!("({what})"),
        pid: 0,
        started: 0,
        what: String::new(),
        token: String::new(),
    };
    let age_of = |m: &std::fs::Metadata| {
        m.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default()
    };
    let link = std::fs::symlink_metadata(path).ok()?;
    if !link.file_type().is_file() {
        let what = if link.file_type().is_dir() {
            "a directory at the claim's name"
        } else if link.file_type().is_symlink() {
            "a link at the claim's name"
        } else {
            "not a regular file at the claim's name"
        };
        return Some((unknown(what), age_of(&link)));
    }
    // Opened before its times are read: on NFS, opening revalidates the
    // attributes (close-to-open), where a plain stat may answer from a
    // cache up to a minute old.
    let Ok(mut file) = std::fs::File::open(path) else { return Some((unknown("an unreadable claim"), age_of(&link))) };
    let meta = file.metadata().unwrap_or(link);
    let age = age_of(&meta);
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Some((unknown("an unreadable claim"), age));
    }
    let holder = match std::str::from_utf8(&bytes) {
        Err(_) => unknown("a claim that is not UTF-8"),
        Ok(text) => serde_json::from_str(text).unwrap_or_else(|_| unknown("an unreadable claim")),
    };
    Some((holder, age))
}

/// A held claim. Its heartbeat runs until it is dropped, which removes it.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    token: String,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Claim {
    /// Whether the claim file still holds this claim's token: checked
    /// before writing the unit's final files.
    pub fn still_held(&self) -> bool {
        read_claim(&self.path).is_some_and(|(h, _)| h.token == self.token)
    }

    /// [`Claim::still_held`] as an error naming the claim: what a holder
    /// calls just before it writes the unit's files.
    pub fn ensure_held(&self) -> Result<(), StoreError> {
        if self.still_held() {
            Ok(())
        } else {
            Err(StoreError::ClaimLost(self.path.clone()))
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.heartbeat.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        if self.still_held() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The outcome of one try.
#[derive(Debug)]
pub enum Attempt {
    /// The claim is ours.
    Won(Claim),
    /// Someone else holds it.
    Busy(Holder),
}

/// Tries once to claim `main`'s unit, taking over an abandoned claim.
pub fn try_claim(main: &Path, what: &str) -> Result<Attempt, StoreError> {
    let path = claim_path(main);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    }
    let me = Holder::me(what);
    for _ in 0..3 {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let text = serde_json::to_vec(&me).map_err(|e| StoreError::Json { path: path.clone(), source: e })?;
                if let Err(e) = f.write_all(&text).and_then(|_| f.sync_all()) {
                    // A claim that names no one would block the unit for
                    // STALE_AFTER: remove it.
                    let _ = std::fs::remove_file(&path);
                    return Err(StoreError::io(&path, e));
                }
                return Ok(Attempt::Won(start_heartbeat(path, me.token)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match state(main) {
                ClaimState::Held(h) => return Ok(Attempt::Busy(h)),
                ClaimState::None => continue,
                ClaimState::Abandoned(old) => take_over(&path, &old, &me.token)?,
            },
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }
    // Three races lost in a row: report whoever holds it now.
    match read_claim(&path) {
        Some((h, _)) => Ok(Attempt::Busy(h)),
        None => Err(StoreError::Unclaimable(path)),
    }
}

/// Moves an abandoned claim out of the way: renamed to a name of the
/// taker's own (of two takers, one rename succeeds), then removed if it is
/// still the claim judged abandoned, or put back if a fresh claim was
/// renamed instead.
fn take_over(path: &Path, old: &Holder, token: &str) -> Result<(), StoreError> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".abandoned-{token}"));
    let aside = PathBuf::from(aside);
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(path, e)),
    }
    let moved = read_claim(&aside).map(|(h, _)| h);
    if moved.as_ref().is_some_and(|h| h.token != old.token) {
        // A fresh claim, made between our reading and our rename.
        let _ = std::fs::hard_link(&aside, path);
    }
    let removed = match std::fs::symlink_metadata(&aside) {
        Ok(m) if m.file_type().is_dir() => std::fs::remove_dir_all(&aside),
        _ => std::fs::remove_file(&aside),
    };
    removed.map_err(|e| StoreError::io(&aside, e))
}

fn start_heartbeat(path: PathBuf, token: String) -> Claim {
    let stop = Arc::new(AtomicBool::new(false));
    let (p, s) = (path.clone(), stop.clone());
    let heartbeat = std::thread::Builder::new()
        .name("claim-heartbeat".into())
        .spawn(move || {
            while !s.load(Ordering::SeqCst) {
                std::thread::park_timeout(HEARTBEAT);
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&p) {
                    let _ = f.set_modified(SystemTime::now());
                }
            }
        })
        .ok();
    Claim { path, token, stop, heartbeat }
}

/// How long a waiting process sleeps between looks.
pub const POLL: Duration = Duration::from_millis(500);

/// Claims `main`'s unit, waiting while another live process holds it
/// (what must be written by one process at a time, whoever comes second
/// writing after the first has finished: a run's report, whose files must
/// all come from one run).
pub fn wait_for_claim(main: &Path, what: &str) -> Result<Claim, StoreError> {
    loop {
        match try_claim(main, what)? {
            Attempt::Won(claim) => return Ok(claim),
            Attempt::Busy(_) => std::thread::sleep(POLL),
        }
    }
}

/// How [`exclusively`] came by a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Came {
    /// It was done before we looked.
    Found,
    /// We computed it under our claim.
    Computed,
    /// Another process computed it while we waited for its claim.
    Waited,
    /// We computed it but lost our claim before writing (paused past
    /// [`STALE_AFTER`]); the process that took it over completed the unit,
    /// and its result stands.
    Lost,
}

/// Runs `compute` for `main`'s unit as its only writer: `done` is asked
/// first and again once the claim is won (another process may have
/// finished the unit meanwhile); while another live process holds the
/// claim, `waiting` is told once and the unit is polled until it is done
/// or its claim abandoned. `compute` gets the claim, to check
/// [`Claim::still_held`] before it writes. A `compute` that fails after
/// its claim was taken over is not an error when the taker completes the
/// unit: its result is returned, as [`Came::Lost`].
pub fn exclusively<T, E: From<StoreError>>(
    main: &Path,
    what: &str,
    mut done: impl FnMut() -> Option<T>,
    compute: impl FnOnce(&Claim) -> Result<T, E>,
    mut waiting: impl FnMut(&Holder),
) -> Result<(T, Came), E> {
    let mut told = false;
    let mut compute = Some(compute);
    let mut failed: Option<E> = None;
    loop {
        if let Some(v) = done() {
            let came = match (&failed, told) {
                (Some(_), _) => Came::Lost,
                (None, true) => Came::Waited,
                (None, false) => Came::Found,
            };
            return Ok((v, came));
        }
        match try_claim(main, what)? {
            Attempt::Won(claim) => {
                if let Some(v) = done() {
                    return Ok((v, if failed.is_some() { Came::Lost } else { Came::Found }));
                }
                // Once lost, nobody completed the unit: the failure stands.
                let Some(compute) = compute.take() else { return Err(failed.expect("computed once")) };
                match compute(&claim) {
                    Ok(v) => return Ok((v, Came::Computed)),
                    Err(e) if !claim.still_held() => {
                        drop(claim);
                        failed = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Attempt::Busy(holder) => {
                if !told {
                    waiting(&holder);
                    told = true;
                }
                std::thread::sleep(POLL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("modcirc-claim-{name}-{}", random_hex(4)));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn one_claim_at_a_time_and_released_on_drop() {
        let d = dir("one");
        let main = d.join("unit.json");
        let Attempt::Won(c) = try_claim(&main, "a").unwrap() else { panic!("won") };
        assert!(c.still_held());
        let Attempt::Busy(h) = try_claim(&main, "b").unwrap() else { panic!("busy") };
        assert_eq!((h.pid, h.what.as_str()), (std::process::id(), "a"));
        assert!(matches!(state(&main), ClaimState::Held(_)));
        drop(c);
        assert_eq!(state(&main), ClaimState::None);
        assert!(matches!(try_claim(&main, "b").unwrap(), Attempt::Won(_)));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_claim_of_a_dead_process_or_not_refreshed_is_taken_over() {
        let d = dir("dead");
        let main = d.join("unit.json");
        // A process that has exited: its pid is not in /proc (or reused,
        // with another start time).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder { host: host_name(), pid, started: 1, what: "killed".into(), token: "t0".into() };
        std::fs::write(claim_path(&main), serde_json::to_vec(&dead).unwrap()).unwrap();
        assert!(matches!(state(&main), ClaimState::Abandoned(_)));
        let Attempt::Won(c) = try_claim(&main, "taker").unwrap() else { panic!("taken over") };
        assert!(c.still_held());
        drop(c);
        // On another host: abandoned only once not refreshed for STALE_AFTER.
        let far = Holder { host: "elsewhere".into(), pid: 1, started: 0, what: "far".into(), token: "t1".into() };
        std::fs::write(claim_path(&main), serde_json::to_vec(&far).unwrap()).unwrap();
        assert!(matches!(try_claim(&main, "x").unwrap(), Attempt::Busy(_)));
        let f = std::fs::OpenOptions::new().write(true).open(claim_path(&main)).unwrap();
        f.set_modified(SystemTime::now() - STALE_AFTER - Duration::from_secs(1)).unwrap();
        assert!(matches!(state(&main), ClaimState::Abandoned(_)));
        assert!(matches!(try_claim(&main, "x").unwrap(), Attempt::Won(_)));
        assert!(std::fs::read_dir(&d).unwrap().count() == 0, "no claim or aside file left");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn odd_claims_are_judged_by_age_and_say_what_they_are() {
        let d = dir("odd");
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(5);
        type Make<'a> = &'a dyn Fn(&Path);
        let cases: [(&str, Make); 3] = [
            ("not UTF-8", &|p| std::fs::write(p, [0xff, 0xfe, 0x00]).unwrap()),
            ("a directory", &|p| std::fs::create_dir(p).unwrap()),
            ("a link", &|p| std::os::unix::fs::symlink("/nonexistent/claim", p).unwrap()),
        ];
        for (i, (what, make)) in cases.iter().enumerate() {
            let main = d.join(format!("unit{i}.json"));
            let claim = claim_path(&main);
            make(&claim);
            let ClaimState::Held(h) = state(&main) else { panic!("{what}: a fresh odd claim is held") };
            assert!(h.host.contains(what), "{what}: {h}");
            let times = std::fs::FileTimes::new().set_modified(old);
            // A link's own time: set through lutimes-less fallback by recreating
            // it is not possible in std; judge the others by age, links too
            // once they are old.
            if std::fs::symlink_metadata(&claim).unwrap().file_type().is_symlink() {
                let c = std::ffi::CString::new(claim.as_os_str().as_encoded_bytes()).unwrap();
                let t = old.duration_since(SystemTime::UNIX_EPOCH).unwrap();
                let ts = libc::timespec { tv_sec: t.as_secs() as _, tv_nsec: 0 };
                // SAFETY: a valid path and two timespecs.
                let rc = unsafe {
                    libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [ts, ts].as_ptr(), libc::AT_SYMLINK_NOFOLLOW)
                };
                assert_eq!(rc, 0);
            } else {
                std::fs::File::open(&claim).unwrap().set_times(times).unwrap();
            }
            assert!(matches!(state(&main), ClaimState::Abandoned(_)), "{what}");
            let Attempt::Won(c) = try_claim(&main, "taker").unwrap() else { panic!("{what}: taken over") };
            assert!(c.still_held());
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn exclusively_computes_once_across_threads() {
        let d = dir("threads");
        let main = d.join("unit.json");
        let computed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let (v, _) = exclusively::<_, StoreError>(
                        &main,
                        "t",
                        || std::fs::read(&main).ok(),
                        |claim| {
                            computed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            assert!(claim.still_held());
                            std::fs::write(&main, b"done").unwrap();
                            Ok(b"done".to_vec())
                        },
                        |_| {},
                    )
                    .unwrap();
                    assert_eq!(v, b"done");
                });
            }
        });
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_holder_that_lost_its_claim_takes_the_takers_result() {
        let d = dir("lost");
        let main = d.join("unit.json");
        // Our compute is paused past the takeover: meanwhile a taker moves
        // our claim aside, claims the unit, completes it and releases it.
        let (v, came) = exclusively::<_, StoreError>(
            &main,
            "paused",
            || std::fs::read(&main).ok(),
            |claim| {
                let taker = Holder { token: "taker".into(), ..Holder::me("taker") };
                std::fs::write(claim_path(&main), serde_json::to_vec(&taker).unwrap()).unwrap();
                std::fs::write(&main, b"by the taker").unwrap();
                std::fs::remove_file(claim_path(&main)).unwrap();
                claim.ensure_held()?;
                unreachable!("the claim was taken over");
            },
            |_| {},
        )
        .unwrap();
        assert_eq!((v.as_slice(), came), (&b"by the taker"[..], Came::Lost));
        // A taker that fails too leaves the holder's error.
        let other = d.join("other.json");
        let r = exclusively::<Vec<u8>, StoreError>(
            &other,
            "paused",
            || std::fs::read(&other).ok(),
            |claim| {
                std::fs::remove_file(claim_path(&other)).unwrap();
                claim.ensure_held().map(|_| Vec::new())
            },
            |_| {},
        );
        assert!(matches!(r, Err(StoreError::ClaimLost(_))), "{r:?}");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "only the taker's unit is left");
        std::fs::remove_dir_all(d).unwrap();
    }
}
