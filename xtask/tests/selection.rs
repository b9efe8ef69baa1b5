//! `cargo xtask discover`'s selection flags (issue 14, item 3): K per layer,
//! live neurons only, an effect threshold, and what the output says of the
//! dead neurons a circuit keeps. On a 784-20-16-10 ReLU network whose first
//! ten neurons of hidden layer 1 are dead on every image.

mod common;

use common::write_dead_relu_model;

use std::path::Path;

use serde_json::Value;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    json: Option<Value>,
}

fn discover(model: &Path, out: &Path, flags: &[&str]) -> Run {
    let _ = std::fs::remove_file(out);
    let root_mnist = common::root().join("fixtures/mnist").display().to_string();
    let mut args = vec!["discover", "--model", model.to_str().unwrap(), "--activation", "relu", "--task", "circle"];
    args.extend(["--bootstraps", "3", "--sample", "100", "--out", out.to_str().unwrap()]);
    args.extend(flags);
    // Not --quiet: the summary this test reads is silenced by it.
    args.extend(["--data-dir", root_mnist.as_str()]);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_xtask")).args(&args).output().unwrap();
    Run {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
        json: std::fs::read(out).ok().map(|b| serde_json::from_slice(&b).unwrap()),
    }
}

fn kept(json: &Value) -> Vec<Vec<u64>> {
    json["report"]["selection"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect())
        .collect()
}

fn counts(json: &Value, field: &str) -> Vec<u64> {
    json["report"]["selection"][field].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

#[test]
fn selection_flags_keep_what_they_say_and_say_what_they_kept() {
    let dir = std::env::temp_dir().join(format!("modcirc-selection-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = write_dead_relu_model(&dir);
    let out = dir.join("d.json");

    // The study's rule: K = 15 of 20 fills five places with dead neurons, and says so.
    let r = discover(&model, &out, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let json = r.json.unwrap();
    assert_eq!(kept(&json).iter().map(Vec::len).collect::<Vec<_>>(), [15, 15]);
    assert_eq!(counts(&json, "dead_kept")[0], 5);
    assert!(r.stdout.contains("5 of the kept neurons are dead"), "{}", r.stdout);
    assert!(r.stdout.contains("lower is better") && r.stdout.contains("the model's own on the same images"));
    // The K-sensitivity rules that fit 20- and 16-wide layers, on the same resamples.
    let compared: Vec<String> = json["report"]["compared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rule"]["k"].to_string() + &c["rule"]["live_only"].to_string())
        .collect();
    assert_eq!(compared, ["[5]false", "[10]false", "[15]false", "[15]true"], "K = 20, 30 do not fit a 16-wide layer");

    // One K per layer.
    let r = discover(&model, &out, &["--k", "15,5"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(kept(r.json.as_ref().unwrap()).iter().map(Vec::len).collect::<Vec<_>>(), [15, 5]);

    // Live neurons only: ten are live in layer 1, and the output says it found only those.
    let r = discover(&model, &out, &["--k", "15,5", "--live-only"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let json = r.json.unwrap();
    assert_eq!(kept(&json)[0], (10..20).collect::<Vec<u64>>());
    assert_eq!(counts(&json, "dead_kept")[0], 0);
    assert!(r.stdout.contains("only 10 live neurons to fill K = 15"), "{}", r.stdout);

    // A threshold keeps exactly the live neurons of at least that effect.
    let r = discover(&model, &out, &["--select", "threshold", "--min-effect", "0.001"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let json = r.json.unwrap();
    let scores = &json["report"]["scores"];
    let baseline = scores["baseline"].as_f64().unwrap();
    for (h, nodes) in kept(&json).iter().enumerate() {
        let layer = scores["layers"][h].as_array().unwrap();
        let expect: Vec<u64> = (0..layer.len() as u64)
            .filter(|&i| {
                let s = layer[i as usize].as_f64().unwrap();
                (s - baseline).abs() > 1e-6 * baseline.abs() && baseline - s >= 0.001
            })
            .collect();
        assert_eq!(nodes, &expect, "hidden layer {}", h + 1);
    }
    assert!(kept(&json)[0].iter().all(|&i| i >= 10), "no dead neuron passes a threshold");

    // Flags that do not go together are usage errors; values that do not fit the model name --k.
    for (flags, code, message) in [
        (&["--select", "threshold"][..], 2, "--min-effect"),
        (&["--min-effect", "0.1"][..], 2, "--min-effect applies to --select threshold only"),
        (&["--select", "threshold", "--min-effect", "0.1", "--live-only"][..], 2, "--live-only applies"),
        (&["--select", "threshold", "--min-effect", "0.1", "--k", "4"][..], 2, "--k applies to --select topk only"),
        (&["--min-effect", "NaN", "--select", "threshold"][..], 2, "not a finite number"),
        (&["--k", "0,5"][..], 2, "0 is not in 1..=1000000"),
        (&["--k", "15,x"][..], 2, "not a whole number"),
        (&["--k", "15,5,3"][..], 1, "3 values of K for 2 hidden layers"),
        (&["--k", "30"][..], 1, "k = 30: k must be in 1..=20 for hidden layer 1 (--k)"),
        (&["--k", "15,17"][..], 1, "k = 17: k must be in 1..=16 for hidden layer 2 (--k)"),
    ] {
        let r = discover(&model, &out, flags);
        assert_eq!(r.code, Some(code), "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{flags:?}: {message:?} not in {}", r.stderr);
        assert!(r.json.is_none(), "{flags:?} wrote its output");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
