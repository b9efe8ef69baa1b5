//! Progress: bars for work that runs at once (indicatif), lines above
//! them, and the engine's observer that draws them. `--quiet` hides the
//! bars and lines; results, warnings and errors still print.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use modcirc_engine::{ModelUnit, Observer, Source, Value};
use modcirc_store::claim::Holder;

/// Progress bars of jobs that run at once, one line each, and messages
/// printed above them.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let multi = MultiProgress::new();
        if quiet {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        Progress { multi, quiet }
    }
    /// A bar for one job, shown while it runs.
    pub fn bar(&self, len: u64, prefix: &str) -> ProgressBar {
        self.multi.add(bar(len, self.quiet, prefix))
    }
    /// Prints `msg` above the bars, unless quiet.
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            self.multi.suspend(|| eprintln!("{msg}"));
        }
    }
    /// Prints a result to standard output above the bars, even when quiet.
    pub fn result(&self, msg: &str) {
        self.multi.suspend(|| println!("{msg}"));
    }
    /// Prints a warning above the bars, even when quiet.
    pub fn warn(&self, msg: &str) {
        self.multi.suspend(|| eprintln!("warning: {msg}"));
    }
}

/// A bar of `len` steps named `prefix` (hidden when `quiet`).
pub fn bar(len: u64, quiet: bool, prefix: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

/// What a progress line adds after a unit.
fn said(source: Source) -> &'static str {
    match source {
        Source::Computed => "",
        Source::Cached => " (cached)",
        Source::ByOther => " (computed by another process)",
    }
}

/// How many units came from where, for a run's closing line.
#[derive(Default, Debug, Clone, Copy)]
pub struct Tally {
    pub computed: usize,
    pub cached: usize,
    pub by_others: usize,
}

/// The engine's observer: a bar per model while its units run, a line per
/// unit done, and a tally.
pub struct Bars {
    progress: Progress,
    bars: Mutex<HashMap<usize, ProgressBar>>,
    tally: Mutex<Tally>,
}

impl Bars {
    pub fn new(progress: Progress) -> Bars {
        Bars { progress, bars: Mutex::new(HashMap::new()), tally: Mutex::new(Tally::default()) }
    }
    pub fn tally(&self) -> Tally {
        *self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn with_bar(&self, m: &ModelUnit, f: impl FnOnce(&ProgressBar)) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let c = &m.point.config;
        let pb =
            bars.entry(m.index).or_insert_with(|| self.progress.bar(1, &format!("{}/{}", c.regime.name(), c.seed)));
        f(pb);
    }
}

impl Observer for Bars {
    fn unit_started(&self, m: &ModelUnit, label: &str, len: u64) {
        self.with_bar(m, |pb| {
            pb.set_length(len);
            pb.set_position(0);
            pb.set_message(label.to_string());
        });
    }
    fn progress(&self, m: &ModelUnit, done: u64, note: Option<String>) {
        self.with_bar(m, |pb| {
            pb.set_position(done);
            if let Some(n) = note {
                pb.set_message(n);
            }
        });
    }
    fn unit_done(&self, m: &ModelUnit, value: Value<'_>, source: Source) {
        {
            let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
            match source {
                Source::Computed => t.computed += 1,
                Source::Cached => t.cached += 1,
                Source::ByOther => t.by_others += 1,
            }
        }
        let line = format!("{}{}", value.summary(m), said(source));
        self.progress.say(&line);
    }
    fn model_finished(&self, m: &ModelUnit) {
        if let Some(pb) = self.bars.lock().unwrap_or_else(|e| e.into_inner()).remove(&m.index) {
            pb.finish_and_clear();
        }
    }
    fn waiting(&self, path: &Path, holder: &Holder) {
        self.progress.say(&format!("waiting for {} ({holder})", path.display()));
    }
    fn warn(&self, msg: &str) {
        self.progress.warn(msg);
    }
}
