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
        let c = &m.point.config;
        let who = format!("{:>8} seed {}", c.regime.label(), c.seed);
        let line = match value {
            Value::Trained(meta) => {
                format!(
                    "[train]     {who}: test accuracy {:.4}, {:.1} s{}",
                    meta.test_accuracy,
                    meta.timing.total_s,
                    said(source)
                )
            }
            Value::Discovered(task, point, d) => {
                let s = &d.report.summary;
                format!(
                    "[discover]  {who} {:>6} K {}: logit difference {:.3}, sparsity {:.4}{}",
                    task.name,
                    point.k,
                    s.logit_difference.mean,
                    s.sparsity.mean,
                    said(source)
                )
            }
            Value::Beyond(b) => format!(
                "[beyond]    {who} {:>6}: circuit faithfulness {:.3}, EAP at that size {:.3}, CPR {:.3}, CMD {:.3}{}",
                b.task,
                b.circuit_faithfulness,
                b.eap_same_size_faithfulness,
                b.curve.cpr,
                b.curve.cmd,
                said(source)
            ),
            Value::Controls(r) => format!("[controls]  {who} {:>6}: {}{}", r.task, r.summary(), said(source)),
            Value::PlantedModel(q) => format!(
                "[planted]   {who}: task accuracy {:.3}, IIA {:.3}, strictness failure {:.3}{}",
                q.task_accuracy,
                q.iia,
                q.strictness_failure,
                said(source)
            ),
            Value::PlantedScores(method, tasks) => {
                let score = tasks.first().and_then(|t| t.method(method.name()));
                let auroc = score.map_or("none".into(), |s| format!("{:.3}", s.node_auroc));
                format!("[planted]   {who} {method}: node AUROC on V1 {auroc}{}", said(source))
            }
            Value::Boolean(b) => {
                let exact: Vec<_> = b.iter().filter(|n| n.exact).collect();
                let valid: usize = exact.iter().map(|n| n.valid).sum();
                format!(
                    "[boolean]   {:>8}: {} of {} networks exact, {:.1} valid circuits each{}",
                    c.regime.label(),
                    exact.len(),
                    b.len(),
                    valid as f64 / exact.len().max(1) as f64,
                    said(source)
                )
            }
            Value::Structure(s) => format!(
                "[structure] {who}: wiring length {:.3}, Q {:.3} (every weight) / {:.3} (eps edges){}",
                s.wiring_length,
                s.all_weights.q,
                s.eps_edges.q,
                said(source)
            ),
        };
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
