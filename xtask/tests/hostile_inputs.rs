//! Careless inputs end in a clear error, exit 1 (2 for usage), with the
//! user's files untouched and no temporary file left behind.

mod common;

use common::{root, xtask};

use std::path::{Path, PathBuf};
use std::process::Output;

use modcirc_mlp::{file, Activation, Mlp};

/// `(name, shape, values)` of each tensor of a file.
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// A fresh directory with a small ReLU model `m.safetensors` and a sidecar `m.json`.
fn workspace(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("modcirc-hostile-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
    let m = Mlp::init(&[784, 8, 10], Activation::Relu, &mut || u.next().unwrap()).unwrap();
    let model = dir.join("m.safetensors");
    std::fs::write(&model, file::to_bytes(&m, &[]).unwrap()).unwrap();
    let sidecar = dir.join("m.json");
    std::fs::write(&sidecar, b"{\"a sidecar\": true}").unwrap();
    (dir, model, sidecar)
}

/// Exit `code`, a message containing every one of `needles`, the inputs
/// byte-identical and no temporary file in `dir`.
fn refused(o: &Output, code: i32, needles: &[&str], inputs: &[(&Path, &[u8])], dir: &Path) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
    for (path, bytes) in inputs {
        assert_eq!(&std::fs::read(path).unwrap()[..], *bytes, "{} changed", path.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn no_command_writes_over_what_it_reads() {
    let (dir, model, sidecar) = workspace("overwrite");
    let (m_bytes, s_bytes) = (std::fs::read(&model).unwrap(), std::fs::read(&sidecar).unwrap());
    let inputs: [(&Path, &[u8]); 2] = [(&model, &m_bytes), (&sidecar, &s_bytes)];
    let m = model.to_str().unwrap();
    // discover --out set to its own --model.
    let o = xtask(&["discover", "--model", m, "--task", "circle", "--out", m]);
    refused(&o, 1, &["--out", "--model", "refusing to write over it"], &inputs, &dir);
    // beyond --out set to the model's sidecar, through another spelling of the path.
    let other = format!("{}/./m.json", dir.display());
    let o = xtask(&["beyond", "--model", m, "--task", "circle", "--out", &other]);
    refused(&o, 1, &["--model's sidecar", "m.json"], &inputs, &dir);
    // train --out m.json: the model and its sidecar would share a path.
    let json = dir.join("new.json");
    let o = xtask(&["train", "--regime", "l1", "--steps", "1", "--out", json.to_str().unwrap()]);
    refused(&o, 1, &["--out and its sidecar would both be"], &inputs, &dir);
    assert!(!json.exists());
    // train --out onto a data file.
    let data_file = root().join("fixtures/mnist/SHA256SUMS");
    let listing = std::fs::read(&data_file).unwrap();
    let o = xtask(&["train", "--regime", "l1", "--steps", "1", "--out", data_file.to_str().unwrap()]);
    refused(&o, 1, &["a data file of --data-dir"], &[(&data_file, &listing)], &dir);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flags_out_of_range_are_usage_errors_before_any_work() {
    let (dir, model, sidecar) = workspace("flags");
    let (m_bytes, s_bytes) = (std::fs::read(&model).unwrap(), std::fs::read(&sidecar).unwrap());
    let inputs: [(&Path, &[u8]); 2] = [(&model, &m_bytes), (&sidecar, &s_bytes)];
    let m = model.to_str().unwrap();
    let out = dir.join("o.json");
    let o_path = out.to_str().unwrap();
    for (flag, value) in [("--bootstraps", "0"), ("--sample", "100000000"), ("--bootstraps", "1000000000")] {
        let o = xtask(&["discover", "--model", m, "--task", "circle", "--out", o_path, flag, value]);
        refused(&o, 2, &[flag], &inputs, &dir);
    }
    let o = xtask(&["reproduce", "--profile", "smoke", "--seeds", "0", "--out", dir.join("r").to_str().unwrap()]);
    refused(&o, 2, &["--seeds"], &inputs, &dir);
    let o = xtask(&["train", "--regime", "l1", "--steps", "0", "--out", dir.join("t.safetensors").to_str().unwrap()]);
    refused(&o, 2, &["--steps"], &inputs, &dir);
    assert!(!out.exists() && !dir.join("r").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn malformed_checkpoints_are_clear_errors() {
    let (dir, _, _) = workspace("malformed");
    let write = |name: &str, tensors: &Tensors| -> PathBuf {
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views: Vec<_> = data
            .iter()
            .map(|(n, s, d)| {
                (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap())
            })
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
        path
    };
    let layer = |k: usize, n_out: usize, n_in: usize| {
        [
            (format!("fc{k}.weight"), vec![n_out, n_in], vec![0.25; n_out * n_in]),
            (format!("fc{k}.bias"), vec![n_out], vec![0.0; n_out]),
        ]
    };
    let cases: Vec<(&str, Tensors, &str)> = vec![
        (
            "zero.safetensors",
            [layer(1, 0, 784), layer(2, 10, 0)].concat(),
            "`fc1.weight` has shape [0, 784]: a width of 0",
        ),
        (
            "gap.safetensors",
            [layer(1, 8, 784), layer(2, 8, 8), layer(4, 10, 8)].concat(),
            "numbered fc1, fc2, fc4 (no `fc3`)",
        ),
        (
            "nan.safetensors",
            {
                let mut t = [layer(1, 8, 784), layer(2, 10, 8)].concat();
                t[2].2[13] = f32::NAN;
                t
            },
            "`fc2.weight` holds NaN at index [1, 5]",
        ),
    ];
    for (name, tensors, message) in cases {
        let path = write(name, &tensors);
        let bytes = std::fs::read(&path).unwrap();
        let out = dir.join("d.json");
        let o = xtask(&[
            "discover",
            "--model",
            path.to_str().unwrap(),
            "--activation",
            "relu",
            "--task",
            "circle",
            "--out",
            out.to_str().unwrap(),
        ]);
        refused(&o, 1, &[message, name], &[(&path, &bytes)], &dir);
        assert!(!out.exists());
    }
    std::fs::remove_dir_all(dir).unwrap();
}
