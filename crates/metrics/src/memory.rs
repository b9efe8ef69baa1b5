//! Heap accounting: a counting global allocator that keeps the bytes in use and
//! their peak (Fig. 5's training memory).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    // Bytes this thread allocated minus bytes it freed, and the most that
    // reached since its window began. Const-initialised `Cell`s: no lazy
    // initialisation and no destructor, so the allocator may touch them.
    static THREAD_NET: Cell<i64> = const { Cell::new(0) };
    static THREAD_PEAK: Cell<i64> = const { Cell::new(0) };
}

/// Heap bytes live in the process, as the [`CountingAlloc`] installed as
/// the global allocator counts them (there is one per process).
static PROCESS_LIVE: AtomicU64 = AtomicU64::new(0);

/// Heap bytes live in the process now, under a [`CountingAlloc`] installed
/// as the global allocator (0 without one): what a library reads where the
/// binary owns the allocator.
pub fn live_heap_bytes() -> u64 {
    PROCESS_LIVE.load(Ordering::Relaxed)
}

fn thread_add(n: i64) {
    let _ = THREAD_NET.try_with(|net| {
        let v = net.get() + n;
        net.set(v);
        let _ = THREAD_PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

/// The heap peak of one thread's work, while other threads work beside it
/// (concurrent trainings): the most bytes this thread had allocated and not
/// yet freed, above what it held when the window began. Counts only under
/// a [`CountingAlloc`] installed as the global allocator, and only what
/// this thread allocates itself (work it hands to other threads is not in it).
///
/// ```
/// use modcirc_metrics::{CountingAlloc, ThreadHeapWindow};
/// #[global_allocator]
/// static ALLOC: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);
/// let window = ThreadHeapWindow::start();
/// let elsewhere = std::thread::spawn(|| vec![0u8; 8 << 20].len());
/// drop(vec![1u8; 1 << 20]);
/// assert_eq!(elsewhere.join().unwrap(), 8 << 20);
/// let peak = window.peak_bytes();
/// assert!(peak >= 1 << 20 && peak < 8 << 20, "{peak}");
/// ```
#[derive(Debug)]
pub struct ThreadHeapWindow {
    at_start: i64,
}

impl ThreadHeapWindow {
    /// Begins a window on the calling thread.
    pub fn start() -> ThreadHeapWindow {
        let at_start = THREAD_NET.with(Cell::get);
        THREAD_PEAK.with(|p| p.set(at_start));
        ThreadHeapWindow { at_start }
    }

    /// The calling thread's peak above the start, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        (THREAD_PEAK.with(Cell::get) - self.at_start).max(0) as u64
    }
}

/// A global-allocator wrapper that counts live and peak heap bytes. The
/// binary installs it (`#[global_allocator]`); libraries only read it.
///
/// ```
/// use modcirc_metrics::CountingAlloc;
/// #[global_allocator]
/// static ALLOC: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);
/// let buffer = vec![1u8; 1 << 20];
/// assert!(ALLOC.peak_bytes() >= 1 << 20 && buffer[0] == 1);
/// ```
pub struct CountingAlloc<A> {
    inner: A,
    peak: AtomicU64,
}

impl<A> CountingAlloc<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        CountingAlloc { inner, peak: AtomicU64::new(0) }
    }
    /// Heap bytes live now.
    pub fn live_bytes(&self) -> u64 {
        live_heap_bytes()
    }
    /// The most heap bytes live since the last reset.
    pub fn peak_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
    /// Starts a new measurement window: the peak becomes the live size.
    pub fn reset_peak(&self) {
        self.peak.store(self.live_bytes(), Ordering::Relaxed);
    }
    fn grew(&self, n: usize) {
        let live = PROCESS_LIVE.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        self.peak.fetch_max(live, Ordering::Relaxed);
        thread_add(n as i64);
    }
    fn shrank(&self, n: usize) {
        PROCESS_LIVE.fetch_sub(n as u64, Ordering::Relaxed);
        thread_add(-(n as i64));
    }
}

// SAFETY: every call is forwarded to `inner` unchanged; the counters are
// side bookkeeping that never affects the returned memory.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.inner.alloc(layout);
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.inner.alloc_zeroed(layout);
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.inner.dealloc(ptr, layout);
        self.shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.inner.realloc(ptr, layout, new_size);
        if !p.is_null() {
            self.shrank(layout.size());
            self.grew(new_size);
        }
        p
    }
}

/// Peak resident set size of this process (`VmHWM`), where Linux reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5), so that
/// the next [`peak_rss_bytes`] covers only what follows. Returns whether the
/// kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_live_and_peak_bytes() {
        let a = CountingAlloc::new(std::alloc::System);
        let l = Layout::from_size_align(1000, 8).unwrap();
        unsafe {
            let p = a.alloc(l);
            let q = a.alloc(l);
            assert_eq!(a.live_bytes(), 2000);
            a.dealloc(p, l);
            assert_eq!((a.live_bytes(), a.peak_bytes()), (1000, 2000));
            a.reset_peak();
            assert_eq!(a.peak_bytes(), 1000);
            let q = a.realloc(q, l, 3000);
            assert_eq!((a.live_bytes(), a.peak_bytes()), (3000, 3000));
            a.dealloc(q, Layout::from_size_align(3000, 8).unwrap());
        }
        assert_eq!(a.live_bytes(), 0);
    }

    #[test]
    fn peak_rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            let before = peak_rss_bytes().unwrap();
            assert!(before > 0);
        }
    }
}
