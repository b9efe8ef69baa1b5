//! Independent jobs on a fixed number of threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::EngineError;

/// Runs `work` on every item, `jobs` at a time, each on its own thread, and
/// returns the results in the items' order. After the first error no new
/// item starts, and that error (the first in item order) is returned.
///
/// ```
/// let squares = modcirc_engine::jobs::run_jobs(&[1, 2, 3], 2, |&x| Ok(x * x)).unwrap();
/// assert_eq!(squares, [1, 4, 9]);
/// ```
pub fn run_jobs<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> Result<R, EngineError> + Sync,
) -> Result<Vec<R>, EngineError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<Result<R, EngineError>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            let worker = || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let r = work(&items[i]);
                failed.fetch_or(r.is_err(), Ordering::SeqCst);
                slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            };
            // The main thread's stack size: training keeps large frames. A
            // thread that cannot start leaves its items to the others (and
            // none at all to `JobNotRun`).
            let _ = std::thread::Builder::new().stack_size(8 << 20).spawn_scoped(s, worker);
        }
    });
    let mut out = Vec::with_capacity(items.len());
    for slot in slots.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match slot {
            Some(r) => out.push(r?),
            None => return Err(EngineError::JobNotRun),
        }
    }
    Ok(out)
}
