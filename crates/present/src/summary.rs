//! A discovery in words: what `discover` prints, each metric with its
//! interval, direction, reference and the ablation it was computed under.

use std::fmt::Write as _;
use std::path::Path;

use modcirc_acdc::NODE_GROWTH;
use modcirc_metrics::Summary;
use modcirc_study::discovery::{
    ablation_means, circuit_above_model, DiscoverOutput, EFFECT_MEANS, FAITHFULNESS_ABOVE_ONE, FAITHFULNESS_FORM,
    FAITHFULNESS_MEANS, LOGIT_DIFFERENCE_MEANS, SPARSITY_MEANS,
};

/// What `discover` prints (standard error under `--json`): each metric with its interval, direction,
/// reference and the ablation it was computed under.
pub fn discovery_summary(out: &DiscoverOutput, path: &Path) -> String {
    let r = &out.report;
    let s = &r.summary;
    let ab = r.config.ablation;
    let ci = |x: &Summary, d: usize| format!("{:.d$} [{:.d$}, {:.d$}]", x.mean, x.lo, x.hi);
    let regime = out.inputs.regime.as_deref().unwrap_or("unknown (no sidecar)");
    let mut t = format!(
        "{} ({} {}, regime: {regime}) on {}, {} pairs; {}, eps = {}\n",
        out.inputs.model,
        out.inputs.sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-"),
        out.inputs.activation,
        out.inputs.task,
        out.pairs.len(),
        r.config.selection,
        r.config.eps,
    );
    let _ = writeln!(t, "  {}", ablation_means(ab));
    let headline =
        r.full_faithfulness.map_or("undefined (the model answers clean and corrupted images alike)".into(), |f| {
            let above = if f > 1.0 { format!("; {FAITHFULNESS_ABOVE_ONE}") } else { String::new() };
            format!("{f:.4}  ({FAITHFULNESS_FORM}: {FAITHFULNESS_MEANS}{above})")
        });
    let _ = writeln!(t, "  on all {} pairs:", out.pairs.len());
    let _ = writeln!(t, "    faithfulness      {headline}");
    let _ = writeln!(
        t,
        "    accuracy          {:.4}  ({ab} ablation; the model's own on the same images: {:.4})",
        r.full.accuracy, r.model_accuracy
    );
    let _ = writeln!(t, "    edges             {} (sparsity {:.4})", r.full_n_edges, r.full.sparsity);
    let _ =
        writeln!(t, "    logit difference  {:.4}  ({ab} ablation; {LOGIT_DIFFERENCE_MEANS})", r.full.logit_difference);
    let _ = writeln!(
        t,
        "  bootstrap mean [95% interval] over {} resamples of {} pairs (the circuit chosen again on each):",
        r.config.bootstraps, r.config.sample
    );
    if let Some(f) = &s.faithfulness {
        let _ = writeln!(t, "    faithfulness      {}  ({FAITHFULNESS_FORM})", ci(f, 4));
    }
    if let (Some(f), false) = (&s.faithfulness_ablated, ab == modcirc_acdc::Ablation::Resample) {
        let _ = writeln!(t, "    faithfulness      {}  (under {ab} ablation, from its empty circuit)", ci(f, 4));
    }
    let _ = writeln!(
        t,
        "    accuracy          {}  ({ab} ablation; the model's own on the same images: {})",
        ci(&s.accuracy, 4),
        ci(&s.model_accuracy, 4)
    );
    if s.accuracy.mean > s.model_accuracy.mean {
        let _ = writeln!(t, "                      {}", circuit_above_model(ab));
    }
    let _ = writeln!(t, "    sparsity          {}  ({SPARSITY_MEANS})", ci(&s.sparsity, 4));
    let _ =
        writeln!(t, "    logit difference  {}  ({ab} ablation; {LOGIT_DIFFERENCE_MEANS})", ci(&s.logit_difference, 4));
    let ms = Summary { mean: s.discovery_s.mean * 1e3, lo: s.discovery_s.lo * 1e3, hi: s.discovery_s.hi * 1e3, n: 0 };
    let _ = writeln!(t, "    discovery         {} ms per resample (patching sweep and selection)", ci(&ms, 2));
    t.push_str(&neurons_and_curves(out));
    let _ = writeln!(t, "  {:.2} s -> {}", out.total_s, path.display());
    t
}

/// The strongest neurons, the notes, the compared rules and the curves of
/// a discovery's summary.
fn neurons_and_curves(out: &DiscoverOutput) -> String {
    let r = &out.report;
    let ab = r.config.ablation;
    let ci = |x: &Summary, d: usize| format!("{:.d$} [{:.d$}, {:.d$}]", x.mean, x.lo, x.hi);
    let base = r.scores.baseline;
    let mut t = String::new();
    let _ = writeln!(t, "  strongest neurons by {EFFECT_MEANS}; as a share of the baseline {base:.4}:");
    for (h, layer) in r.scores.layers.iter().enumerate() {
        let mut order: Vec<usize> = (0..layer.len()).collect();
        order.sort_by(|&a, &b| r.scores.effect(h, b).total_cmp(&r.scores.effect(h, a)).then(a.cmp(&b)));
        let top: Vec<String> = order
            .iter()
            .take(TOP_NEURONS)
            .map(|&i| {
                let kept = if r.selection.nodes[h].binary_search(&i).is_ok() { "" } else { " (not kept)" };
                format!("#{i} {:+.1}%{kept}", 100.0 * r.scores.effect(h, i) / base)
            })
            .collect();
        let _ = writeln!(t, "    hidden layer {}: {}", h + 1, top.join(", "));
    }
    for n in &out.notes {
        let _ = writeln!(t, "  note: {n}");
    }
    if !r.compared.is_empty() {
        let _ = writeln!(
            t,
            "  how the circuit moves with the rule (same resamples; {ab} ablation; faithfulness {FAITHFULNESS_FORM}; dead kept per layer):"
        );
        for c in &r.compared {
            let dead: Vec<String> = c.dead_kept.iter().map(usize::to_string).collect();
            let f = c.faithfulness.as_ref().map_or("undefined".into(), |f| ci(f, 3));
            let _ = writeln!(
                t,
                "    {:<36} logit difference {}, accuracy {}, sparsity {}, faithfulness {f}, dead kept {}",
                c.rule.to_string(),
                ci(&c.logit_difference, 4),
                ci(&c.accuracy, 3),
                ci(&c.sparsity, 4),
                dead.join("/")
            );
        }
    }
    if let Some(c) = &r.node_curve {
        let points: Vec<String> =
            c.k.iter()
                .zip(&c.faithfulness)
                .filter(|(k, _)| curve_point(**k, c.k.len()))
                .map(|(k, f)| format!("{k}: {f:.3}"))
                .collect();
        let _ = writeln!(t, "  faithfulness by K on all pairs ({NODE_GROWTH}; {FAITHFULNESS_FORM}):");
        let _ = writeln!(t, "    {}", points.join(", "));
    }
    if let Some(c) = &r.edge_curve {
        let points: Vec<String> = c
            .edges
            .iter()
            .zip(&c.fractions)
            .zip(&c.faithfulness)
            .map(|((e, fr), f)| format!("{e} ({:.1}%): {f:.3}", fr * 100.0))
            .collect();
        let _ = writeln!(t, "  faithfulness of the top-|EAP| edges on all pairs (CPR {:.3} higher is better, CMD {:.3} lower is better):", c.cpr, c.cmd);
        let _ = writeln!(t, "    {}", points.join(", "));
    }
    if let Some(m) = &r.smallest {
        let _ = writeln!(t, "{}", smallest_line(m));
    }
    t
}

/// K values the printed curve shows: every K to 20, then every 5th, and the last.
fn curve_point(k: usize, last: usize) -> bool {
    k <= 20 || k.is_multiple_of(5) || k == last
}

/// The smallest faithful circuits, in words.
pub fn smallest_line(m: &modcirc_acdc::SmallestFaithful) -> String {
    let mut t = format!("  smallest circuit with faithfulness ≥ {} on all pairs ({FAITHFULNESS_FORM}):\n", m.target);
    match (m.k, m.faithfulness) {
        (Some(k), Some(f)) => {
            let _ = write!(
                t,
                "    nodes: K = {k} (neurons kept: {}), {} edges, sparsity {:.4}, faithfulness {f:.3}",
                m.kept
                    .iter()
                    .enumerate()
                    .map(|(h, n)| format!("{n} in hidden layer {}", h + 1))
                    .collect::<Vec<_>>()
                    .join(", "),
                m.edges,
                m.sparsity.unwrap_or(f64::NAN)
            );
            if let Some(fr) = &m.faithfulness_resampled {
                let _ = write!(t, "; over resamples {:.3} [{:.3}, {:.3}]", fr.mean, fr.lo, fr.hi);
            }
            t.push('\n');
        }
        _ => t.push_str("    nodes: no K reaches it, not even every neuron (the eps rule drops small weights)\n"),
    }
    if let Some(p) = &m.per_layer {
        let _ = write!(
            t,
            "    per layer (each layer shrunk on its own from K): {} neurons, {} edges, sparsity {:.4}, faithfulness {:.3}",
            p.kept.iter().map(usize::to_string).collect::<Vec<_>>().join(" / "),
            p.edges,
            p.sparsity,
            p.faithfulness
        );
        if let Some(fr) = &p.faithfulness_resampled {
            let _ = write!(t, "; over resamples {:.3} [{:.3}, {:.3}]", fr.mean, fr.lo, fr.hi);
        }
        t.push('\n');
    }
    let (reach, of) = m.resamples_reaching;
    match &m.k_resampled {
        Some(k) => {
            let _ = writeln!(
                t,
                "    each resample's own smallest K: {:.1} [{:.0}, {:.0}] ({reach} of {of} resamples reach it)",
                k.mean, k.lo, k.hi
            );
        }
        None => {
            let _ = writeln!(t, "    no resample reaches it");
        }
    }
    match (m.eap_edges, m.eap_faithfulness) {
        (Some(e), Some(f)) => {
            let _ = write!(t, "    edges: the top {e} |EAP| edges, faithfulness {f:.3}");
        }
        _ => t.push_str("    edges: no top-|EAP| circuit on the curve reaches it"),
    }
    t
}

/// Neurons listed per layer in `discover`'s summary.
const TOP_NEURONS: usize = 5;
