//! Wall time per named phase of a run, accumulated over its spans.

use std::collections::BTreeMap;
use std::time::Instant;

/// Monotonic wall time per named phase, accumulated over repeated spans.
#[derive(Debug, Default, Clone)]
pub struct PhaseTimer {
    seconds: BTreeMap<String, f64>,
}

impl PhaseTimer {
    /// No phases yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs `f`, adds its wall time to `phase`, and returns its result.
    pub fn time<T>(&mut self, phase: &str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.add(phase, t.elapsed().as_secs_f64());
        out
    }
    /// Adds `seconds` to `phase`: for a span timed where the timer cannot be
    /// borrowed (work that shares its owner with other threads).
    pub fn add(&mut self, phase: &str, seconds: f64) {
        *self.seconds.entry(phase.to_string()).or_default() += seconds;
    }
    /// Seconds spent in `phase` so far.
    pub fn seconds(&self, phase: &str) -> f64 {
        self.seconds.get(phase).copied().unwrap_or(0.0)
    }
    /// Seconds per phase.
    pub fn phases(&self) -> &BTreeMap<String, f64> {
        &self.seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_per_phase() {
        let mut t = PhaseTimer::new();
        let v = t.time("a", || 3);
        t.time("a", || std::thread::sleep(std::time::Duration::from_millis(2)));
        assert_eq!(v, 3);
        assert!(t.seconds("a") >= 0.002);
        assert_eq!(t.seconds("b"), 0.0);
        assert_eq!(t.phases().len(), 1);
    }
}
