//! The report's sections beyond the paper: across seeds, STUDY §8 and §9, and the findings.

use std::fmt::Write as _;

use modcirc_bimt::Regime;
use modcirc_report::markdown_table;

use modcirc_study::beyond::{method_rows, BeyondResult, MethodRow, ACDC_PAIRS};
use modcirc_study::discovery::FAITHFULNESS_ABOVE_ONE;
use modcirc_study::paper::TASKS;
use modcirc_study::results::{beyond0, find, Results};
use modcirc_study::verdicts::{ci, ci_opt, fmt_ms};

use super::{verdict_list, Table};

/// Each metric's spread over training seeds.
pub(super) fn across_seeds(s: &mut String, r: &Results) {
    let Some(a) = &r.across_seeds else { return };
    let Some(t) = across_seeds_table(r) else { return };
    let _ = writeln!(s, "## Across training seeds (STUDY §9)\n");
    let _ = writeln!(s, "{}\n", t.note);
    s.push_str(&t.markdown());
    let _ = writeln!(s, "\nThe hypotheses judged twice: on seed 0 (the paper's design, the verdicts below) and on the intervals over seeds (RQ2: on the means over seeds of memory and training time; inference is timed on seed 0 only). *Agree* counts the seeds whose own data, judged by the seed-0 rule, give seed 0's verdict.\n");
    let rows: Vec<Vec<String>> = a
        .agreement
        .iter()
        .map(|g| {
            let across = a.verdicts.iter().find(|v| v.id == g.id).map_or("–".to_string(), |v| v.verdict.clone());
            vec![g.id.clone(), g.seed0.clone(), across, format!("{} of {}", g.agree, g.seeds)]
        })
        .collect();
    s.push_str(&markdown_table(&["hypothesis", "seed 0", "across seeds", "agree"], &rows));
    s.push('\n');
}

/// Every RQ1 metric per regime and task over training seeds.
pub fn across_seeds_table(r: &Results) -> Option<Table> {
    let a = r.across_seeds.as_ref()?;
    let rows: Vec<Vec<String>> = a
        .rows
        .iter()
        .map(|row| {
            vec![
                row.task.clone(),
                row.regime.label().into(),
                row.seeds.to_string(),
                ci(&row.logit_difference, 4),
                ci(&row.sparsity, 4),
                ci(&row.accuracy, 3),
                fmt_ms(&row.discovery_s),
                ci_opt(&row.faithfulness, 3),
                ci_opt(&row.stability, 3),
            ]
        })
        .collect();
    Some(Table {
        title: "Across training seeds".into(),
        note: format!("Seeds {:?} of every regime. Each cell: the mean over seeds of each seed's bootstrap mean, with a 95% Student-t interval over seeds (n = seeds): the variance from training, which the paper's single model per regime cannot show. Logit difference: lower is closer to the model; sparsity: higher is a smaller circuit; faithfulness: 1 recovers the model; stability: 1 is the same circuit on every resample.", a.seeds),
        header: [
            "task",
            "model",
            "seeds",
            "logit difference",
            "sparsity",
            "circuit accuracy",
            "discovery (ms)",
            "faithfulness",
            "stability",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    })
}

/// STUDY §9: structure per regime, and the findings.
pub(super) fn structure_section(s: &mut String, r: &Results) {
    if r.structure.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Modularity, locality and specialisation (STUDY §9)\n");
    let _ = writeln!(s, "Per model: wiring length Σ|W|·D / Σ|W| (what L1+Local and BIMT penalise); Newman's modularity Q (best of {} Louvain runs) and the spectral n-cut into 8 clusters of the graph on every neuron with edge weight |W|, on the weights the eps rule keeps (Q of every weight in brackets); how sure that Q is: the least Q of the runs, the mean pairwise NMI of their partitions (1: the same communities every run), and the z-score of Q against {} rewirings that keep every neuron's edges per layer and every edge's weight (Maslov-Sneppen swaps; how much of Q sparsity and degrees alone give); circuit locality (the circuit's mean pairwise distance over that of the layer's live neurons; below 1 is gathered), per hidden layer; the Jaccard overlap of the circle and line circuits; cross-ablation: the model's accuracy on each task's images with its own circuit's neurons zero-ablated, then the other task's (intact in brackets).\n", modcirc_study::structure::LOUVAIN_RUNS, modcirc_study::structure::NULL_REWIRINGS);
    let rows: Vec<Vec<String>> = r
        .structure
        .iter()
        .map(|st| {
            let loc = st
                .circuits
                .iter()
                .map(|c| {
                    let l: Vec<String> =
                        c.locality.iter().map(|x| x.map_or("–".into(), |v| format!("{v:.2}"))).collect();
                    format!("{} {}", c.task, l.join("/"))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let ncut8 = st.eps_edges.ncut.iter().find(|n| n.k == 8).map_or("–".into(), |n| format!("{:.3}", n.ncut));
            let (overlap, cross) = match &st.specialisation {
                Some(sp) => (
                    format!("{:.3}", sp.overlap),
                    sp.cross_ablation
                        .iter()
                        .map(|c| format!("{} {:.3} / {:.3} ({:.3})", c.task, c.own_ablated, c.other_ablated, c.intact))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                None => ("–".into(), "–".into()),
            };
            vec![
                st.regime.map_or("–".into(), |g| g.label().to_string()),
                st.seed.map_or("–".into(), |x| x.to_string()),
                format!("{:.3}", st.wiring_length),
                format!("{:.3} ({:.3}), {} communities", st.eps_edges.q, st.all_weights.q, st.eps_edges.communities),
                q_sureness(&st.eps_edges),
                ncut8,
                loc,
                overlap,
                cross,
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "model",
            "seed",
            "wiring length",
            "Q eps (all)",
            "Q: least of runs / NMI / z vs rewired",
            "n-cut k=8",
            "locality (layer 1/2)",
            "overlap",
            "accuracy: own / other ablated (intact)",
        ],
        &rows,
    ));
    structure_across_seeds(s, r);
    let _ = writeln!(s, "\n### Findings\n");
    let _ = writeln!(s, "Each decided from this run's numbers by the rule stated with it.\n");
    verdict_list(s, &r.findings);
    s.push('\n');
}

/// STUDY §8: attribution patching against exact patching, and faithfulness.
/// STUDY §9's network structure per regime across seeds.
fn structure_across_seeds(s: &mut String, r: &Results) {
    if let Some(t) = structure_table(r) {
        let _ = writeln!(s, "\n{}\n", t.note);
        s.push_str(&t.markdown());
    }
}

/// STUDY §9's network structure (wiring, modularity, n-cut, overlap) per regime across seeds.
pub fn structure_table(r: &Results) -> Option<Table> {
    let a = r.across_seeds.as_ref()?;
    let rows: Vec<Vec<String>> = a
        .structure
        .iter()
        .map(|row| {
            vec![
                row.regime.label().into(),
                row.seeds.to_string(),
                ci(&row.wiring_length, 3),
                ci(&row.q_eps, 3),
                ci_opt(&row.z_eps, 1),
                ci_opt(&row.nmi_eps, 3),
                ci(&row.q_all, 3),
                ci_opt(&row.ncut8_eps, 3),
                ci_opt(&row.overlap, 3),
            ]
        })
        .collect();
    Some(Table {
        title: "Network structure and modularity across seeds".into(),
        note: "Per regime across seeds (95% t-interval):".into(),
        header: [
            "model",
            "seeds",
            "wiring length",
            "Q (eps edges)",
            "z vs rewired",
            "NMI of runs",
            "Q (every weight)",
            "n-cut k=8",
            "circle/line overlap",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    })
}

pub(super) fn beyond_section(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Beyond the paper: attribution patching and faithfulness (STUDY §8)\n");
    let _ = writeln!(s, "On the seed-0 models and each task's full pair set, with the answer metric m = L[clean digit] − L[corrupted digit]. *Node attribution* estimates each hidden neuron's patching effect from one backward pass, (a − a')·∂m/∂a on the corrupted run; ρ is its Spearman correlation with exact patching of every neuron, per hidden layer (on the last hidden layer the estimate is exact, since the logits are linear in it). *Faithfulness* is (m(C) − m(∅)) / (m(M) − m(∅)) on the clean images, with every removed edge carrying its source's value on the paired corrupted image: 1 recovers the model, 0 is no better than the corrupted run; {FAITHFULNESS_ABOVE_ONE}. The discovered circuit is the K-node circuit above, with its eps edges: its faithfulness is the mean [95% interval] over the bootstrap resamples, each resample's circuit on its own pairs. *EAP* keeps as many edges as the circuit found on all pairs, ranked by edge attribution patching, judged on all pairs. CPR and CMD are the areas under f and |1 − f| over log10 of the fraction of edges kept (0.1% to 100%), divided by that span: CPR higher is better, CMD lower is better. Computed once per model and task, without resampling.\n");
    let rows: Vec<Vec<String>> = TASKS
        .iter()
        .flat_map(|t| Regime::ALL.iter().map(move |reg| (t, reg)))
        .filter_map(|(t, reg)| beyond0(&r.beyond, *reg, t))
        .map(|b| {
            let rho = b.node_spearman.iter().map(|x| x.map_or("–".into(), |v| format!("{v:.3}"))).collect::<Vec<_>>();
            vec![
                b.task.clone(),
                b.regime_label().into(),
                rho.join(" / "),
                format!("{:.1}", b.exact_patching_s * 1e3),
                format!("{:.2}", b.node_attribution_s * 1e3),
                format!("{:.0}x", b.exact_patching_s / b.node_attribution_s.max(1e-12)),
                match b.regime.and_then(|reg| find(&r.discoveries, reg, &b.task)).and_then(|d| d.faithfulness) {
                    Some(f) => {
                        format!("{}; all pairs {:.3} ({} edges)", ci(&f, 3), b.circuit_faithfulness, b.circuit_edges)
                    }
                    None => format!("all pairs {:.3} ({} edges)", b.circuit_faithfulness, b.circuit_edges),
                },
                format!("{:.3}", b.eap_same_size_faithfulness),
                format!("{:.3}", b.curve.cpr),
                format!("{:.3}", b.curve.cmd),
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "task",
            "model",
            "ρ (layer 1 / 2)",
            "exact patching (ms)",
            "attribution (ms)",
            "speed-up",
            "faithfulness, discovered circuit: bootstrap mean [95%]; all pairs",
            "EAP, same size",
            "CPR",
            "CMD",
        ],
        &rows,
    ));
    acdc_table(&mut s, r);
    findings(&mut s, r);
    let _ = writeln!(s, "\nExact patching here is already batched with rank-1 updates, so attribution's speed-up is small next to the usual forward pass per neuron.\n");
    methods_table(&mut s, r);
    s
}

/// STUDY §12's edge methods beside EAP, per regime over every seed and task.
pub(super) fn methods_table(s: &mut String, r: &Results) {
    let rows = method_rows(&r.beyond);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "### The methods the benchmarks rank best (STUDY §12)\n");
    if let Some(t) = methods_table_data(r) {
        let _ = writeln!(s, "{}\n", t.note);
        s.push_str(&t.markdown());
    }
    for regime in Regime::ALL {
        let on: Vec<&MethodRow> = rows.iter().filter(|m| m.regime == regime).collect();
        let best = |f: fn(&MethodRow) -> f64, low: bool| {
            on.iter()
                .copied()
                .max_by(|a, b| if low { f(b).total_cmp(&f(a)) } else { f(a).total_cmp(&f(b)) })
                .map(|m| format!("{} ({:.3})", m.method, f(m)))
        };
        if let (Some(cpr), Some(cmd)) = (best(|m| m.cpr.mean, false), best(|m| m.cmd.mean, true)) {
            let _ = writeln!(s, "- {}: the highest CPR is {cpr}; the lowest CMD is {cmd}.", regime.label());
        }
    }
    s.push('\n');
}

/// Edge-level ACDC per model and task.
pub(super) fn acdc_table(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n*Edge-level ACDC* visits receivers from the outputs back, gives each incoming edge its corrupted value, and removes it for good when the KL divergence of the circuit's output distribution from the model's grows by less than tau; run on the first {} pairs of each task and judged by faithfulness on those pairs and on all of the task's pairs (a gap between the two is a circuit fitted to its pairs), next to as many top-|EAP| edges.\n", r.beyond.first().map_or(ACDC_PAIRS, |b| b.acdc.pairs));
    let rows: Vec<Vec<String>> = TASKS
        .iter()
        .flat_map(|t| Regime::ALL.iter().map(move |reg| (t, reg)))
        .filter_map(|(t, reg)| beyond0(&r.beyond, *reg, t))
        .map(|b| {
            let a = &b.acdc;
            vec![
                b.task.clone(),
                b.regime_label().into(),
                format!("{}", a.config.tau),
                a.edges.to_string(),
                format!("{:.2e} ({})", a.circuit_metric, a.config.metric),
                format!("{:.3} / {:.3}", a.faithfulness_own_pairs, a.faithfulness),
                format!("{:.3}", a.eap_same_size_faithfulness),
                format!("{:.2}", a.seconds),
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "task",
            "model",
            "tau (nats)",
            "ACDC edges",
            "ACDC metric",
            "faithfulness (its pairs / all pairs)",
            "EAP, same size (all pairs)",
            "ACDC (s)",
        ],
        &rows,
    ));
    s.push('\n');
}

/// One computed line per task: the most faithful circuit, the highest CPR, ACDC's smallest circuit.
pub(super) fn findings(s: &mut String, r: &Results) {
    for t in TASKS {
        let on_task = || r.beyond.iter().filter(move |b| b.task == t && b.seed == Some(0));
        let best = |f: fn(&BeyondResult) -> f64| {
            on_task().max_by(|a, b| f(a).total_cmp(&f(b))).map(|b| format!("{} {:.3}", b.regime_label(), f(b)))
        };
        let smallest =
            on_task().min_by_key(|b| b.acdc.edges).map(|b| format!("{} ({} edges)", b.regime_label(), b.acdc.edges));
        if let (Some(circuit), Some(cpr), Some(smallest)) =
            (best(|b| b.circuit_faithfulness), best(|b| b.curve.cpr), smallest)
        {
            let _ = writeln!(s, "- {t}: the most faithful discovered circuit (on all pairs) is {circuit}; the highest CPR is {cpr}; ACDC's smallest circuit is {smallest}.");
        }
        let fitted: Vec<String> = on_task()
            .filter(|b| b.acdc.faithfulness_own_pairs - b.acdc.faithfulness > ACDC_FIT_GAP)
            .map(|b| format!("{} {:.3} → {:.3}", b.regime_label(), b.acdc.faithfulness_own_pairs, b.acdc.faithfulness))
            .collect();
        if !fitted.is_empty() {
            let pairs = on_task().next().map_or(ACDC_PAIRS, |b| b.acdc.pairs);
            let _ = writeln!(s, "- {t}: ACDC's circuit is fitted to the {pairs} pairs it was found on, more than to the task: its faithfulness falls by more than {ACDC_FIT_GAP} from those pairs to all of the task's ({}). It keeps edges that matter on those pairs only; judge it on all pairs.", fitted.join(", "));
        }
    }
}

/// A fall of ACDC's faithfulness from its own pairs to all pairs above
/// which the report says the circuit is fitted to its pairs.
const ACDC_FIT_GAP: f64 = 0.1;

/// Q's least run, the runs' NMI and the z-score against rewired graphs
/// (STUDY §9), where measured.
fn q_sureness(g: &modcirc_study::structure::GraphModularity) -> String {
    let spread = g.spread.as_ref().map_or("–".into(), |p| format!("{:.3} / {:.3}", p.min, p.nmi));
    let z = g.null.as_ref().and_then(|n| n.z).map_or("–".into(), |z| format!("{z:.1}"));
    format!("{spread} / {z}")
}

/// STUDY §12's comparison of the edge methods per regime, for REPORT.md
/// and REPORT.html alike.
pub fn methods_table_data(r: &Results) -> Option<Table> {
    let rows = method_rows(&r.beyond);
    if rows.is_empty() {
        return None;
    }
    let settings = r.beyond.iter().find_map(|b| b.settings.as_ref());
    let stability = settings.and_then(|b| b.stability);
    let how = methods_how(r);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.method.clone(),
                row.regime.label().into(),
                row.seeds.to_string(),
                ci(&row.cpr, 3),
                ci(&row.cmd, 3),
                ci(&row.same_size_faithfulness, 3),
                row.agreement_rho.as_ref().map_or("n/a".into(), |v| ci(v, 3)),
                row.top_k_overlap.as_ref().map_or("n/a".into(), |v| ci(v, 3)),
                row.stability.as_ref().map_or("n/a".into(), |v| ci(v, 3)),
                format!("{:.2}", row.seconds),
                row.stability_seconds.map_or("n/a".into(), |v| format!("{v:.2}")),
            ]
        })
        .collect();
    Some(Table {
        title: "The methods the benchmarks rank best (STUDY §12)".into(),
        note: format!("Every edge method is judged as EAP is: by the faithfulness of the circuits of its top edges at 0.1% to 100% of all edges, on all of the task's pairs, and its CPR (higher is better) and CMD (lower is better). {how}. Each seed's value is the mean over the tasks; mean [95% t-interval] over seeds. *Same size*: the faithfulness of its top edges at the discovered node circuit's size. *ρ vs exact* and *top-K vs exact*: how its neuron scores agree with exact activation patching on the same pairs (Spearman's ρ over every hidden neuron; the share of the K = 15 neurons of largest exact effect per layer among its K of largest score), the project's measure of how good each approximation is. *Stability*: the mean pairwise Jaccard overlap of the neurons of its circuit at that size found again on each of the discovery's first {} bootstrap resamples ({} for the methods that train masks, each a whole sweep; 1 is the same circuit every time), and its time per model and task. Time is per model and task (for masks, the whole sweep). Figure: `figures/fig8_methods.png`.", stability.map_or("n/a".into(), |s| s.resamples.to_string()), stability.map_or("n/a".into(), |s| s.trained_resamples.to_string())),
        header: [
            "method",
            "model",
            "seeds",
            "CPR",
            "CMD",
            "same size",
            "ρ vs exact",
            "top-K vs exact",
            "stability",
            "time (s)",
            "stability time (s)",
        ].map(String::from).to_vec(),
        rows: table,
    })
}

/// How the §12 methods ran, in words (their settings as the results carry them).
fn methods_how(r: &Results) -> String {
    let settings = r.beyond.iter().find_map(|b| b.settings.as_ref());
    let ig_steps = settings.and_then(|b| {
        b.methods.iter().find_map(|m| match m {
            modcirc_acdc::Method::EapIg { steps } | modcirc_acdc::Method::EapIgActivations { steps } => Some(*steps),
            _ => None,
        })
    });
    let mask = settings.and_then(|b| {
        b.methods.iter().find_map(|m| match m {
            modcirc_acdc::Method::Mask { config, pairs } => Some((config, *pairs)),
            _ => None,
        })
    });
    match (ig_steps, mask) {
        (Some(steps), Some((mask, pairs))) => format!(
            "EAP-IG averages the gradient over {} points on the straight line from the corrupted to the clean input (*eap-ig*) or, per layer, to the clean activations (*eap-ig-activations*); *mask* trains a sigmoid mask per edge by Adam ({} steps per penalty, on the task's first {} pairs) to keep the KL divergence from the model small with a penalty λ per kept edge, λ = {}, each fit starting where the last ended, and ranks edges by their mask summed over the penalties; *mask-warm* is the same sweep with each edge's logit starting at 3·(2r − 1), r its normalised rank by \\|EAP-IG\\| (the MIB circuit track's warm start); *ensemble* ranks each edge by the mean of its normalised ranks under eap-ig, eap-ig-activations and mask",
            steps,
            mask.steps,
            pairs,
            mask.lambdas.iter().map(|l| format!("{l:e}")).collect::<Vec<_>>().join(", ")
        ),
        _ => "EAP-IG and learned masks as STUDY §12 defines them".into(),
    }
}
