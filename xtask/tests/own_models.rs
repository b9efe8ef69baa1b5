//! A researcher's own models, as the issue "your own models, your own
//! question" tried them: the smallest faithful circuit, one ablation said
//! everywhere, a page for any model, every circuit exported, scriptable
//! output, and models compared side by side.

mod common;

use common::{root, write_dead_relu_model};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `xtask args… --data-dir fixtures/mnist`, not quiet.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .args(["--data-dir", root().join("fixtures/mnist").to_str().unwrap()])
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("modcirc-own-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const SMALL: [&str; 4] = ["--bootstraps", "3", "--sample", "60"];

fn discover(model: &Path, extra: &[&str]) -> Output {
    let m = model.to_str().unwrap();
    let mut args = vec!["discover", "--model", m, "--activation", "relu", "--task", "3:8,8:3"];
    args.extend(SMALL);
    args.extend(extra);
    run(&args)
}

#[test]
fn the_smallest_faithful_circuit_is_the_first_k_of_the_curve_to_reach_the_target() {
    let dir = scratch("smallest");
    let model = write_dead_relu_model(&dir);
    let out = dir.join("d.json");
    let stdout = ok(&discover(&model, &["--target-faithfulness", "0.7", "--out", out.to_str().unwrap()]));
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let r = &v["report"];
    let curve = &r["node_curve"];
    let ks: Vec<u64> = curve["k"].as_array().unwrap().iter().map(|k| k.as_u64().unwrap()).collect();
    let f: Vec<f64> = curve["faithfulness"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(ks, (1..=20).collect::<Vec<u64>>(), "K runs to the widest hidden layer");
    let want = ks.iter().zip(&f).find(|(_, &f)| f >= 0.7).map(|(&k, _)| k);
    let got = r["smallest"]["k"].as_u64();
    assert_eq!(got, want, "the smallest K is the curve's first crossing");
    let k = got.expect("the model reaches 0.7 before its last K");
    assert!(r["smallest"]["faithfulness"].as_f64().unwrap() >= 0.7);
    assert!(stdout.contains(&format!("nodes: K = {k} ")), "{stdout}");
    // The edge curve and its smallest circuit are there, and every compared rule has a faithfulness.
    assert!(r["edge_curve"]["cpr"].as_f64().is_some());
    assert!(r["smallest"]["eap_edges"].as_u64().is_some());
    assert!(r["compared"].as_array().unwrap().iter().all(|c| c["faithfulness"]["mean"].as_f64().is_some()));
    assert!(stdout.contains("faithfulness by K on all pairs") && stdout.contains("top-|EAP| edges"), "{stdout}");
    // The discovery records the activation and the sizes.
    assert_eq!(v["inputs"]["activation"], "relu");
    assert_eq!(v["inputs"]["sizes"], serde_json::json!([784, 20, 16, 10]));
    // A target no circuit reaches says so, and its file reads back.
    let stdout = ok(&discover(&model, &["--target-faithfulness", "50", "--out", out.to_str().unwrap()]));
    assert!(stdout.contains("nodes: no K reaches it"), "{stdout}");
    let back: modcirc_study::DiscoverOutput = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let m = back.report.smallest.unwrap();
    assert!(m.k.is_none() && m.sparsity.is_none() && m.eap_edges.is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn each_metric_says_its_ablation_and_faithfulness_follows_it() {
    let dir = scratch("ablation");
    let model = write_dead_relu_model(&dir);
    let mut faithfulness = Vec::new();
    for ab in ["zero", "mean", "resample"] {
        let out = dir.join(format!("{ab}.json"));
        let stdout = ok(&discover(&model, &["--ablation", ab, "--out", out.to_str().unwrap()]));
        assert!(stdout.contains(&format!("({ab} ablation; mean distance")), "{stdout}");
        assert!(stdout.contains(&format!("{ab} ablation: neurons and weights outside the circuit")), "{stdout}");
        let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let s = &v["report"]["summary"];
        let (study, under) =
            (s["faithfulness"]["mean"].as_f64().unwrap(), s["faithfulness_ablated"]["mean"].as_f64().unwrap());
        faithfulness.push((study, under));
        if ab == "resample" {
            assert_eq!(study, under, "resample ablation is the corrupted-value form");
        } else {
            assert!(stdout.contains(&format!("(under {ab} ablation, from its empty circuit)")), "{stdout}");
        }
    }
    // The study's form is the same whatever the ablation; the ablated one is not.
    assert!(faithfulness.iter().all(|f| f.0 == faithfulness[0].0));
    assert!((faithfulness[0].1 - faithfulness[2].1).abs() > 1e-9, "{faithfulness:?}");
    // A share of the baseline as --min-effect keeps the neurons whose effect reaches it.
    let out = dir.join("share.json");
    ok(&discover(&model, &["--select", "threshold", "--min-effect", "5%", "--out", out.to_str().unwrap()]));
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let r = &v["report"];
    let base = r["scores"]["baseline"].as_f64().unwrap();
    for (h, layer) in r["scores"]["layers"].as_array().unwrap().iter().enumerate() {
        let kept: Vec<u64> =
            r["selection"]["nodes"][h].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        for (i, s) in layer.as_array().unwrap().iter().enumerate() {
            let effect = base - s.as_f64().unwrap();
            let live = effect.abs() > 1e-6 * base.abs();
            assert_eq!(kept.contains(&(i as u64)), live && effect >= 0.05 * base, "layer {h} neuron {i}");
        }
    }
    assert_eq!(r["selection"]["rule"]["rule"], "share_threshold");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn json_goes_alone_to_standard_output_and_quiet_prints_nothing() {
    let dir = scratch("script");
    let model = write_dead_relu_model(&dir);
    for flag in [&["--json"][..], &["--out", "-"][..]] {
        let o = discover(&model, flag);
        let v: Value = serde_json::from_slice(&o.stdout).expect("standard output is the JSON alone");
        assert_eq!(v["schema"], "modcirc.discover/4");
    }
    let o = discover(&model, &["--json", "--quiet"]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("q.json");
    let o = discover(&model, &["--quiet", "--out", out.to_str().unwrap()]);
    assert!(o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(), "{o:?}");
    assert!(out.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn any_model_gets_a_page_and_every_circuit_exports() {
    let dir = scratch("page");
    // A file that does not say its activation, as PyTorch writes them: the tensors, no metadata.
    let model = dir.join("bare.safetensors");
    let bytes = std::fs::read(write_dead_relu_model(&dir)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    std::fs::write(&model, safetensors::tensor::serialize(st.tensors(), None).unwrap()).unwrap();
    let m = model.to_str().unwrap();
    let (disc, page) = (dir.join("d.json"), dir.join("page.html"));
    ok(&discover(
        &model,
        &["--target-faithfulness", "0.7", "--out", disc.to_str().unwrap(), "--html", page.to_str().unwrap()],
    ));
    let data = modcirc_present::html::embedded_data(&std::fs::read_to_string(&page).unwrap()).unwrap();
    assert_eq!(data.models.len(), 1);
    assert_eq!(data.models[0].sizes, [784, 20, 16, 10]);
    assert!(data.models[0].tasks["3:8,8:3"].circuits.contains_key("topk"));
    assert!(data.tables.iter().any(|t| t.title.contains("smallest faithful circuit")), "{:?}", data.tables);
    assert!(data.curves.len() == 2, "the top-|EAP| and the K curves");

    // The DOT draws the task's logits only.
    let dot = dir.join("d.dot");
    let args = ["export", "--model", m, "--activation", "relu", "--discovery", disc.to_str().unwrap()];
    ok(&run(&[&args[..], &["--format", "dot", "--out", dot.to_str().unwrap()]].concat()));
    let text = std::fs::read_to_string(&dot).unwrap();
    for d in 0..10 {
        assert_eq!(text.contains(&format!("\"logits.{d}\"")), d == 3 || d == 8, "digit {d}:\n{text}");
    }
    // Another activation than the discovery's is refused.
    let o = run(&[
        "export",
        "--model",
        m,
        "--activation",
        "tanh",
        "--discovery",
        disc.to_str().unwrap(),
        "--out",
        dir.join("x.json").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("with relu activations, not tanh"), "{err}");

    // A `beyond` output: its ACDC, EAP, EAP-IG, mask and ensemble circuits export; a discover-only kind is refused.
    let beyond = dir.join("b.json");
    let mut args = vec!["beyond", "--model", m, "--activation", "relu", "--task", "3:8,8:3", "--acdc-pairs", "20"];
    args.extend(["--mask-steps", "20", "--mask-pairs", "20", "--ig-steps", "3"]);
    args.extend(SMALL);
    args.extend(["--out", beyond.to_str().unwrap()]);
    ok(&run(&args));
    let b: Value = serde_json::from_slice(&std::fs::read(&beyond).unwrap()).unwrap();
    let methods = b["methods"].as_array().unwrap();
    let names: Vec<&str> = methods.iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(names, ["eap", "eap-ig", "eap-ig-activations", "mask", "mask-warm", "ensemble"]);
    // The settings name each method with its options.
    assert_eq!(b["settings"]["methods"][0], serde_json::json!({"method": "eap-ig", "steps": 3}));
    assert_eq!(b["settings"]["methods"][2]["training_pairs"], 20, "the masks' training pairs, named so");
    let mut kinds = vec![("acdc", &b["acdc"]["kept"]), ("eap", &b["eap_edges"])];
    kinds.extend(methods[1..].iter().map(|m| (m["method"].as_str().unwrap(), &m["same_size_edges"])));
    for (kind, field) in kinds {
        let g = dir.join(format!("{kind}.json"));
        let o = run(&[
            "export",
            "--model",
            m,
            "--activation",
            "relu",
            "--discovery",
            beyond.to_str().unwrap(),
            "--circuit",
            kind,
            "--out",
            g.to_str().unwrap(),
        ]);
        ok(&o);
        let graph: Value = serde_json::from_slice(&std::fs::read(&g).unwrap()).unwrap();
        let kept = graph["edges"].as_object().unwrap().values().filter(|e| e["in_graph"] == true).count();
        assert_eq!(kept, field.as_array().unwrap().len(), "{kind}");
    }
    let o = run(&[
        "export",
        "--model",
        m,
        "--activation",
        "relu",
        "--discovery",
        beyond.to_str().unwrap(),
        "--circuit",
        "nodes",
        "--out",
        dir.join("y.json").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("edge circuits (eap, acdc,") && err.contains("ensemble), not nodes"), "{err}");
    // Only EAP-IG: the mask's circuit is not in the file, and export says how to get it.
    let only = dir.join("only.json");
    let mut args = vec!["beyond", "--model", m, "--activation", "relu", "--task", "3:8,8:3", "--acdc-pairs", "20"];
    args.extend(["--method", "eap-ig", "--out", only.to_str().unwrap()]);
    args.extend(SMALL);
    ok(&run(&args));
    let o = run(&[
        "export",
        "--model",
        m,
        "--activation",
        "relu",
        "--discovery",
        only.to_str().unwrap(),
        "--circuit",
        "mask",
        "--out",
        dir.join("z.json").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("did not run mask (run beyond with that method)"), "{err}");
    // Bad method options are refused before any work, naming the flag.
    for (flag, value) in [("--method", "eap-ig,magic"), ("--mask-lambdas", "0.1,-1"), ("--ig-steps", "0")] {
        let o = run(&["beyond", "--model", m, "--activation", "relu", "--task", "circle", flag, value]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{err}");
    }
    let o = run(&["beyond", "--model", m, "--activation", "relu", "--task", "circle", "--mask-lambdas", "0.1,0.01"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--mask-lambdas") && err.contains("ascending"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// [`write_dead_relu_model`]'s network, every weight moved by up to 2%
/// (drawn from `seed`) and the first layer's scaled by `scale`, written as
/// PyTorch saves an `nn.Sequential`'s state dict (`0.weight`, `2.weight`,
/// …; no metadata). (Random networks often answer one class for every
/// image; this one answers several.)
fn write_sequential(path: &Path, seed: u64, scale: f32) {
    use safetensors::tensor::{Dtype, TensorView};
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut u = move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let base = write_dead_relu_model(path.parent().unwrap());
    let mut m = modcirc_mlp::file::load(&base, Some(modcirc_mlp::Activation::Relu)).unwrap().model;
    for l in &mut m.layers {
        l.weight.iter_mut().for_each(|w| *w *= 1.0 + 0.04 * (u() as f32 - 0.5));
    }
    m.layers[0].weight.iter_mut().for_each(|w| *w *= scale);
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut owned = Vec::new();
    for (k, l) in m.layers.iter().enumerate() {
        owned.push((format!("{}.weight", 2 * k), vec![l.n_out, l.n_in], f32s(&l.weight)));
        owned.push((format!("{}.bias", 2 * k), vec![l.n_out], f32s(&l.bias)));
    }
    let views: Vec<_> =
        owned.iter().map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap())).collect();
    std::fs::write(path, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
}

/// Three conditions of PyTorch-made models, two seeds each: per condition
/// the controls and every method, the tests between every pair of
/// conditions with Holm's correction, and one answer per metric.
#[test]
fn three_conditions_compare_with_controls_methods_tests_and_an_answer_per_metric() {
    let dir = scratch("compare");
    let mut specs = Vec::new();
    // Condition names that would be markup, taken as plain text.
    for (condition, scale) in [("plain", 1.0), ("<script>alert(1)</script>", 1.1), ("[x](javascript:alert(1))", 0.9)] {
        for seed in 0..2u64 {
            let path = dir.join(format!("{}-{seed}.safetensors", specs.len()));
            write_sequential(&path, 10 * specs.len() as u64 + seed, scale);
            specs.push(format!("{condition}={}", path.display()));
        }
    }
    let out = dir.join("cmp");
    let mut args: Vec<&str> = vec!["compare"];
    args.extend(specs.iter().map(String::as_str));
    args.extend(["--activation", "relu", "--task", "3:8,8:3", "--acdc-pairs", "20", "--method", "eap-ig"]);
    args.extend(["--random", "20", "--stability-resamples", "2"]);
    args.extend(SMALL);
    args.extend(["--out", out.to_str().unwrap()]);
    let stdout = ok(&run(&args));
    let c: Value = serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(c["schema"], "modcirc.compare/2");
    let models = c["models"].as_array().unwrap();
    assert_eq!(models.len(), 6);
    for m in models {
        assert_eq!(m["controls"]["random"], 20, "every model gets the controls");
        let methods: Vec<&str> =
            m["methods"].as_array().unwrap().iter().map(|x| x["method"].as_str().unwrap()).collect();
        assert_eq!(methods, ["eap", "eap-ig"]);
        assert!(m["methods"][1]["stability"].as_f64().is_some());
        assert!(m["edges"]["eps_edges"].as_u64().unwrap() <= m["edges"]["weights"].as_u64().unwrap());
    }
    // Every pair of the three conditions, tested on the headline, Holm over the three.
    let tests: Vec<&Value> = c["tests"].as_array().unwrap().iter().filter(|t| t["metric"] == "faithfulness").collect();
    assert_eq!(tests.len(), 3);
    let p: Vec<f64> = tests.iter().map(|t| t["p"].as_f64().unwrap()).collect();
    let want = modcirc_metrics::holm(&p);
    for (t, w) in tests.iter().zip(&want) {
        assert!((t["p_holm"].as_f64().unwrap() - w).abs() < 1e-12);
        assert_eq!(t["smallest_p"].as_f64().unwrap(), 1.0 / 3.0, "2 against 2: 2 of C(4, 2) = 6 splits");
    }
    let answers = c["answers"].as_array().unwrap();
    let conditions = c["conditions"].as_array().unwrap();
    assert_eq!(answers.len(), conditions[0]["values"].as_array().unwrap().len(), "one answer per metric");
    assert!(answers[0]["line"].as_str().unwrap().starts_with("faithfulness (higher is better): not separable"));
    // What is printed: each condition's headline numbers and the answers, the floor said once.
    assert!(stdout.contains("plain (2 checkpoints): faithfulness "), "{stdout}");
    assert!(stdout.contains("margin over random circuits"), "{stdout}");
    assert_eq!(stdout.matches("no two-sided permutation p can be below 0.333").count(), 1, "{stdout}");
    assert!(stdout.contains("eap-ig stability (higher is better): not separable"), "{stdout}");
    // The Markdown and the page take the names as text.
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("| \\<script\\>alert\\(1\\)\\</script\\> |"), "{md}");
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    assert!(!md.contains("<script>alert") && !md.contains("](javascript"), "{md:.300}");
    // The page's data: no `<` that could close its script element; cells are set as text.
    assert!(!html.contains("<script>alert"), "{html:.300}");
    let page = modcirc_present::html::embedded_data(&html).unwrap();
    assert!(page.models.is_empty() && page.tables[0].title == "Answers" && page.curves.len() == 6);
    let png = std::fs::read(out.join("faithfulness_by_k.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    // A baseline no model has is a usage error naming the flag.
    let o = run(&["compare", &specs[0], &specs[2], "--activation", "relu", "--task", "line", "--baseline", "nonesuch"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--baseline \"nonesuch\" is no model's condition"), "{err}");

    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn standard_output_takes_one_file_and_nothing_after_it() {
    let dir = scratch("stdout");
    let m = write_dead_relu_model(&dir);
    // The JSON and the page cannot both go there.
    for first in [&["--json"][..], &["--out", "-"][..]] {
        let mut extra = first.to_vec();
        extra.extend(["--html", "-"]);
        let o = discover(&m, &extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("--html -") && o.stdout.is_empty(), "{err}");
    }
    // The page there, the JSON to a file: the page and nothing after it.
    let json = dir.join("d.json");
    let o = discover(&m, &["--out", json.to_str().unwrap(), "--html", "-"]);
    let page = ok(&o);
    assert!(page.trim_end().ends_with("</html>") && page.trim_start().starts_with("<!DOCTYPE html>"), "{page:.200}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("page -> -"));
    assert!(json.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// `compare` refuses one checkpoint given twice and `--out -`.
#[test]
fn compare_refuses_a_checkpoint_twice_and_a_directory_on_standard_output() {
    let dir = scratch("compare-refusals");
    let a = write_dead_relu_model(&dir);
    // One checkpoint twice (by its path, or a copy) would count twice.
    let copy = dir.join("copy.safetensors");
    std::fs::copy(&a, &copy).unwrap();
    for twice in [a.to_str().unwrap(), copy.to_str().unwrap()] {
        let o = run(&["compare", a.to_str().unwrap(), twice, "--task", "line", "--activation", "relu"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("the same checkpoint as") && err.contains(twice), "{err}");
    }
    // A directory is written: `--out -` is a usage error, not a directory named `-`.
    let o = run(&["compare", a.to_str().unwrap(), "--task", "line", "--out", "-"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--json"));
    assert!(!Path::new("-").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// `evaluate` on a circuit of one's own: given as nodes, as a plain JSON of
/// edges, or as a `discover` output, the same circuit scores the same; a
/// circuit of another model, a PyTorch pickle and indices past the model
/// are refused with what is wrong.
#[test]
fn a_circuit_of_ones_own_is_evaluated_however_it_is_given() {
    let dir = scratch("evaluate");
    let m = write_dead_relu_model(&dir);
    let ms = m.to_str().unwrap();
    let disc = dir.join("d.json");
    ok(&discover(&m, &["--k", "4", "--out", disc.to_str().unwrap()]));
    let d: Value = serde_json::from_slice(&std::fs::read(&disc).unwrap()).unwrap();
    let nodes: Vec<Vec<u64>> = serde_json::from_value(d["report"]["selection"]["nodes"].clone()).unwrap();
    let spec =
        nodes.iter().map(|l| l.iter().map(u64::to_string).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join("/");
    let base = ["evaluate", "--model", ms, "--activation", "relu", "--task", "3:8,8:3", "--random", "20"];
    let small = ["--bootstraps", "3", "--sample", "60", "--optimal-pairs", "40"];
    let eval = |how: &[&str], name: &str| -> (Value, String) {
        let out = dir.join(name);
        let stdout = ok(&run(&[&base[..], &small[..], how, &["--out", out.to_str().unwrap()]].concat()));
        (serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap(), stdout)
    };
    let page = dir.join("page.html");
    let (by_nodes, stdout) = eval(&["--nodes", &spec, "--html", page.to_str().unwrap()], "n.json");
    // The page opens on the circuit given, beside the discovery's.
    let data = modcirc_present::html::embedded_data(&std::fs::read_to_string(&page).unwrap()).unwrap();
    let given = &data.models[0].tasks["3:8,8:3"].circuits["evaluated"];
    assert_eq!(given.nodes.iter().map(Vec::len).collect::<Vec<_>>(), nodes.iter().map(Vec::len).collect::<Vec<_>>());
    assert_eq!((data.circuit.as_deref(), data.models[0].seed), (Some("evaluated"), None));
    let (by_file, _) = eval(&["--circuit", disc.to_str().unwrap()], "f.json");
    // The headline is the discovery's own faithfulness on all pairs.
    let f = by_nodes["faithfulness"].as_f64().unwrap();
    assert!((f - d["report"]["full_faithfulness"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(by_file["faithfulness"], by_nodes["faithfulness"]);
    assert!(stdout.contains("faithfulness (all pairs, removed edges carrying corrupted values)"), "{stdout}");
    assert!(stdout.contains("under optimal ablation"), "{stdout}");
    // The same circuit as a plain JSON of its edges: an export's in-graph weights.
    let graph = dir.join("g.json");
    ok(&run(&[
        "export",
        "--model",
        ms,
        "--activation",
        "relu",
        "--discovery",
        disc.to_str().unwrap(),
        "--out",
        graph.to_str().unwrap(),
    ]));
    let (by_graph, _) = eval(&["--circuit", graph.to_str().unwrap()], "g-eval.json");
    assert!((by_graph["faithfulness"].as_f64().unwrap() - f).abs() < 1e-6);
    assert_eq!(by_graph["random"][0]["pool"], "edges");
    let plain = dir.join("plain.json");
    std::fs::write(
        &plain,
        serde_json::to_vec(&serde_json::json!({"edges": [[0, 12, 400], [1, 3, 12], [2, 3, 3]]})).unwrap(),
    )
    .unwrap();
    let (three, _) = eval(&["--circuit", plain.to_str().unwrap()], "p-eval.json");
    assert_eq!(three["edges"], 3);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `evaluate` refuses indices past the model, another model's circuit and
/// a PyTorch pickle, each with what is wrong.
#[test]
fn evaluate_says_what_is_wrong_with_a_circuit_or_a_model() {
    let dir = scratch("evaluate-refusals");
    let m = write_dead_relu_model(&dir);
    let ms = m.to_str().unwrap();
    let disc = dir.join("d.json");
    ok(&discover(&m, &["--k", "4", "--out", disc.to_str().unwrap()]));
    let base = ["evaluate", "--model", ms, "--activation", "relu", "--task", "3:8,8:3", "--random", "20"];
    let o = run(&[&base[..], &["--nodes", "3,99/1"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("hidden layer 1: neuron 99 is past its 20 neurons"), "{err}");
    let other = dir.join("other.safetensors");
    write_sequential(&other, 5, 1.0);
    let o = run(&[
        "evaluate",
        "--model",
        other.to_str().unwrap(),
        "--activation",
        "relu",
        "--task",
        "line",
        "--circuit",
        disc.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("its indices mean nothing here"), "{err}");
    let pt = dir.join("model.pt");
    std::fs::write(&pt, b"PK\x03\x04\x00\x00\x08\x00\x00\x00archive/data.pkl").unwrap();
    let o = run(&["evaluate", "--model", pt.to_str().unwrap(), "--task", "line", "--nodes", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("as torch.save writes") && err.contains("safetensors.torch.save_file"), "{err}");
    // Neither or both of --circuit and --nodes: usage.
    let o = run(&base);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

/// `controls` says when no disjoint alternative was sought, rather than
/// "0 of 0 alternatives reach 0.8".
#[test]
fn controls_without_alternatives_say_so() {
    let dir = scratch("no-alternatives");
    let m = write_dead_relu_model(&dir);
    let out = dir.join("c.json");
    let mut args = vec!["controls", "--model", m.to_str().unwrap(), "--activation", "relu", "--task", "3:8,8:3"];
    args.extend(["--alternatives", "0", "--random", "10", "--optimal-pairs", "40", "--out", out.to_str().unwrap()]);
    args.extend(SMALL);
    let stdout = ok(&run(&args));
    assert!(stdout.contains("no disjoint alternatives sought") && !stdout.contains("0 of 0"), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}
