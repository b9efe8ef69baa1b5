//! A workload in words, as `sweep plan` and `sweep status` print it.

use std::fmt::Write as _;

use modcirc_store::listing::recorded_sha256;

use crate::plan::sizes_name;
use crate::workload::{Census, Workload};
use crate::EngineError;

/// The plan named `name` laid out in `sw`: its axes, units, each model's
/// key, configuration, estimated cost and state, each discovery setting's
/// key, the planted suite, and what the cache holds.
pub fn plan(sw: &Workload, name: &str) -> Result<String, EngineError> {
    let p = &sw.plan;
    let mut t = String::new();
    let _ = writeln!(t, "plan {name}: {} units in {}", p.unit_count(), sw.out.display());
    for a in &p.axes {
        let _ = writeln!(t, "  {:<20} {}{}", a.name, a.values.join(", "), if a.swept() { "   (swept)" } else { "" });
    }
    let _ = writeln!(
        t,
        "{} trainings, {} discoveries ({} discovery setting{} x {} task{} per model), {} STUDY §9 analyses",
        p.models.len(),
        p.models.len() * p.settings.len() * p.tasks.len(),
        p.settings.len(),
        if p.settings.len() == 1 { "" } else { "s" },
        p.tasks.len(),
        if p.tasks.len() == 1 { "" } else { "s" },
        p.models.len() * p.settings.len()
    );
    let _ = writeln!(t, "\nmodel units (each with its discoveries and analyses; estimated CPU seconds):");
    let sums: Vec<String> = (0..p.settings.len()).map(|s| sw.setting_key(s)).collect();
    for m in &sw.models {
        let c = &m.point.config;
        let state = if recorded_sha256(&m.path).is_some() { "trained" } else { "to train" };
        let _ = writeln!(
            t,
            "  {}  {:<9} seed {:<3} steps {:<7} lambda {:<7} swap {:<5} {:<16} {:<9} {:>8.1} s  {state}",
            m.key,
            c.regime.name(),
            c.seed,
            c.steps,
            c.lambda,
            c.swap_every,
            sizes_name(&c.sizes),
            c.activation,
            m.cost
        );
    }
    let _ = writeln!(t, "\ndiscovery settings (their keys join the model's SHA-256 and the task in each unit's key):");
    for (s, key) in p.settings.iter().zip(&sums) {
        let c = &s.settings.config;
        let _ = writeln!(
            t,
            "  {key}  K {:<3} eps {:<6} ablation {:<8} {} resamples of {} pairs",
            s.k, c.eps, c.ablation, c.bootstraps, c.sample
        );
    }
    let total = sw.all().cost();
    let c = sw.census(&sw.all())?;
    if let Some(s) = &p.planted {
        let _ = writeln!(
        t,
            "\nplanted-truth suite (STUDY §11): {} regimes x {} seeds of {} steps, block {}, and a Boolean suite per regime: {} units",
            s.regimes.len(),
            s.seeds.len(),
            s.steps,
            s.block,
            s.units()
        );
    }
    let _ = writeln!(
        t,
        "\nestimated {:.0} CPU seconds in all ({:.1} h); in the cache: {} of {} units done, {} running, {} abandoned",
        total,
        total / 3600.0,
        c.done,
        p.unit_count(),
        c.running.len(),
        c.abandoned.len()
    );
    Ok(t)
}

/// What the cache holds of `sw`'s units (`c`): the counts, then each
/// running and abandoned unit and the first missing ones.
pub fn status(sw: &Workload, c: &Census) -> String {
    let n = sw.plan.unit_count();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{}: {} of {n} units done, {} running, {} abandoned (to be picked up again), {} missing, {} waiting for their model",
        sw.out.display(),
        c.done,
        c.running.len(),
        c.abandoned.len(),
        c.missing.len(),
        c.waiting
    );
    for r in &c.running {
        let _ = writeln!(t, "  running    {r}");
    }
    for a in &c.abandoned {
        let _ = writeln!(t, "  abandoned  {a}");
    }
    for m in c.missing.iter().take(20) {
        let _ = writeln!(t, "  missing    {m}");
    }
    if c.missing.len() > 20 {
        let _ = writeln!(t, "  ... and {} more missing", c.missing.len() - 20);
    }
    t
}
