//! Careless inputs end in a clear error, exit 1 (2 for usage), with the
//! user's files untouched and no temporary file left behind.

mod common;

use common::{root, xtask, xtask_on};

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
    for (flag, value) in [
        ("--bootstraps", "0"),
        ("--sample", "100000000"),
        ("--bootstraps", "1000000000"),
        ("--k", "-1"),
        ("--eps", "1"),
    ] {
        let o = xtask(&["discover", "--model", m, "--task", "circle", "--out", o_path, flag, value]);
        refused(&o, 2, &[flag, value, "is not in"], &inputs, &dir);
    }
    // In range, but a resample of a million pairs would hold 9 GiB: refused
    // from the model's widths before the data is even read.
    let plain = dir.join("plain.safetensors");
    std::fs::copy(&model, &plain).unwrap();
    let p = plain.to_str().unwrap();
    let o = xtask(&["discover", "--model", p, "--task", "circle", "--out", o_path, "--sample", "1000000", "--k", "4"]);
    refused(&o, 1, &["sample = 1000000", "GiB", "--sample"], &[(&plain, &m_bytes)], &dir);
    for (flag, value) in [("--seeds", "0"), ("--jobs", "0"), ("--jobs", "-2")] {
        let o = xtask(&["reproduce", "--profile", "smoke", flag, value, "--out", dir.join("r").to_str().unwrap()]);
        refused(&o, 2, &[flag, "is not in 1..="], &inputs, &dir);
    }
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
        (
            // Finite weights whose second layer sums eight values of 3e38.
            "overflow.safetensors",
            {
                let mut t = [layer(1, 8, 784), layer(2, 10, 8)].concat();
                t[1].2.fill(3e38);
                t[2].2.fill(1.0);
                t
            },
            "the model's logits on pair 0 (clean image) is not finite",
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
            "--k",
            "4",
            "--out",
            out.to_str().unwrap(),
        ]);
        refused(&o, 1, &[message, name], &[(&path, &bytes)], &dir);
        assert!(!out.exists());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every file under `dir` with its bytes: what must be unchanged afterwards.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// A data directory of raw IDX files: 200 training images 28x28 and 20 test
/// images `test_side` square, labels cycling through 0..9.
fn data_dir(name: &str, test_side: usize, test_label: Option<u8>) -> PathBuf {
    use modcirc_dataset::idx::encode_idx;
    let dir = std::env::temp_dir().join(format!("modcirc-hostile-data-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (prefix, n, side) in [("train", 200, 28), ("t10k", 20, test_side)] {
        let images: Vec<u8> = (0..n * side * side).map(|i| (i * 31 % 251) as u8).collect();
        let mut labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        if prefix == "t10k" {
            if let Some(l) = test_label {
                labels[7] = l;
            }
        }
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), encode_idx(&[n, side, side], &images)).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), encode_idx(&[n], &labels)).unwrap();
    }
    dir
}

/// `train` on `data` refused with `needles`, the data untouched, no model written.
fn train_refused(data: &Path, needles: &[&str]) {
    let before = snapshot(data);
    let out = data.join("m.safetensors");
    let o = xtask_on(data, &["train", "--regime", "l1", "--steps", "1", "--out", out.to_str().unwrap()]);
    let inputs: Vec<(&Path, &[u8])> = before.iter().map(|(p, b)| (p.as_path(), b.as_slice())).collect();
    refused(&o, 1, needles, &inputs, data);
    assert_eq!(snapshot(data), before, "files added or changed in {}", data.display());
}

#[test]
fn data_that_does_not_fit_the_model_is_refused_before_training() {
    // Test images of another size, or of no size: once a panic after training.
    let d = data_dir("side32", 32, None);
    train_refused(&d, &["test images have 1024 pixels (32x32), the model takes 784", "--data-dir"]);
    std::fs::remove_dir_all(d).unwrap();
    let d = data_dir("side0", 0, None);
    train_refused(&d, &["test images have 0 pixels (0x0)"]);
    std::fs::remove_dir_all(d).unwrap();
    // A label outside the classes, in the test split.
    let d = data_dir("label", 28, Some(12));
    train_refused(&d, &["test label 12 is outside the model's 10 classes"]);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_partial_listing_or_something_else_where_a_data_file_should_be_is_named() {
    let d = data_dir("listing", 28, None);
    let hash = |name: &str| {
        let bytes = std::fs::read(d.join(name)).unwrap();
        modcirc_store::sha256_hex(&bytes)
    };
    let names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"];
    let listing: String = names.iter().map(|n| format!("{}  {n}\n", hash(n))).collect();
    std::fs::write(d.join("SHA256SUMS"), listing).unwrap();
    train_refused(&d, &["SHA256SUMS does not list t10k-labels-idx1-ubyte", "--no-verify"]);
    std::fs::remove_file(d.join("SHA256SUMS")).unwrap();
    // A directory where the test labels should be.
    let labels = d.join("t10k-labels-idx1-ubyte");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::remove_file(&labels).unwrap();
    std::fs::create_dir(&labels).unwrap();
    train_refused(&d, &["t10k-labels-idx1-ubyte: a directory, where the data file"]);
    std::fs::remove_dir(&labels).unwrap();
    // A loop of links.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(d.join("loop"), &labels).unwrap();
        std::os::unix::fs::symlink(&labels, d.join("loop")).unwrap();
        train_refused(&d, &["t10k-labels-idx1-ubyte: cannot be read", "symbolic links"]);
        std::fs::remove_file(&labels).unwrap();
        std::fs::remove_file(d.join("loop")).unwrap();
    }
    std::fs::write(&labels, bytes).unwrap();
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_sidecar_that_contradicts_the_weights_is_refused() {
    let d = data_dir("sidecar", 28, None);
    let a = d.join("a.safetensors");
    let o =
        xtask_on(&d, &["train", "--regime", "l1", "--steps", "1", "--sizes", "784,8,10", "--out", a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    // Another network, given a's sidecar.
    let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
    let other = Mlp::init(&[784, 9, 10], Activation::Silu, &mut || u.next().unwrap()).unwrap();
    let b = d.join("b.safetensors");
    std::fs::write(&b, file::to_bytes(&other, &[]).unwrap()).unwrap();
    std::fs::copy(d.join("a.json"), d.join("b.json")).unwrap();
    let (b_bytes, side) = (std::fs::read(&b).unwrap(), std::fs::read(d.join("b.json")).unwrap());
    let out = d.join("o.json");
    let o =
        xtask_on(&d, &["discover", "--model", b.to_str().unwrap(), "--task", "circle", "--out", out.to_str().unwrap()]);
    let side_path = d.join("b.json");
    refused(
        &o,
        1,
        &["b.json", "the sidecar says [784, 8, 10] silu, the weights are [784, 9, 10] silu"],
        &[(&b, &b_bytes), (&side_path, &side)],
        &d,
    );
    assert!(!out.exists());
    // Same widths, another regime: the sidecar records its weights' SHA-256.
    let c = d.join("c.safetensors");
    let o = xtask_on(
        &d,
        &["train", "--regime", "bimt", "--steps", "1", "--sizes", "784,8,10", "--out", c.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::copy(d.join("a.json"), d.join("c.json")).unwrap();
    let o =
        xtask_on(&d, &["discover", "--model", c.to_str().unwrap(), "--task", "circle", "--out", out.to_str().unwrap()]);
    refused(&o, 1, &["c.json", "the sidecar describes weights with SHA-256", "a sidecar of another model?"], &[], &d);
    assert!(!out.exists());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_failed_write_leaves_no_sidecar_and_no_temporary_file() {
    let d = data_dir("failed-write", 28, None);
    // A directory where the model should go: refused before any work (a
    // directory is never replaced), so no sidecar is written either.
    let out = d.join("m.safetensors");
    std::fs::create_dir_all(out.join("in-the-way")).unwrap();
    let o = xtask_on(&d, &["train", "--regime", "l1", "--steps", "1", "--out", out.to_str().unwrap()]);
    refused(&o, 1, &["m.safetensors", "is a directory, not a regular file"], &[], &d);
    assert!(!d.join("m.json").exists(), "an orphan sidecar");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_save_that_runs_out_of_room_keeps_the_old_model_and_its_sidecar() {
    use std::os::unix::process::CommandExt;
    let d = data_dir("full-disk", 28, None);
    let models = d.with_extension("models");
    std::fs::create_dir_all(&models).unwrap();
    let (out, side) = (models.join("m.safetensors"), models.join("m.json"));
    let train = |limit: Option<u64>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        c.args(["train", "--regime", "l1", "--steps", "1", "--out", out.to_str().unwrap()]);
        c.args(["--data-dir", d.to_str().unwrap(), "--quiet"]);
        if let Some(limit) = limit {
            // A disk that fills up: no file of this run may grow past
            // `limit` bytes (the sidecar fits, the model does not).
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                c.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let r = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        c.output().unwrap()
    };
    let o = train(None);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let before = (std::fs::read(&out).unwrap(), std::fs::read(&side).unwrap());
    let o = train(Some(64 * 1024));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("m.safetensors"), "{err}");
    let after = (std::fs::read(&out).unwrap(), std::fs::read(&side).unwrap());
    assert!(after == before, "the old model and its sidecar are kept whole");
    let left: Vec<_> = std::fs::read_dir(&models).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().contains(".tmp-")), "temporary files left: {left:?}");
    std::fs::remove_dir_all(d).unwrap();
    std::fs::remove_dir_all(models).unwrap();
}

#[test]
fn temporary_files_of_a_killed_run_are_removed_by_the_next() {
    let (dir, model, sidecar) = workspace("stale");
    std::fs::remove_file(sidecar).unwrap();
    // pid_max is at most 2^22 on Linux: no process has this pid.
    let host = modcirc_store::atomic::host_in_name();
    let stale = dir.join(format!("o.json.tmp-4999999-0123456789abcdef-{host}"));
    std::fs::write(&stale, b"half a discovery").unwrap();
    let out = dir.join("o.json");
    let o = xtask(&[
        "discover",
        "--model",
        model.to_str().unwrap(),
        "--activation",
        "relu",
        "--task",
        "circle",
        "--bootstraps",
        "2",
        "--k",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.exists() && !stale.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_model_is_not_run_on_other_data_than_it_was_trained_on_by_default() {
    let d = data_dir("provenance", 28, None);
    let m = d.join("m.safetensors");
    let o = xtask_on(&d, &["train", "--regime", "l1", "--steps", "1", "--out", m.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    // Outside the data directory's own files: what a run writes there
    // would count as data (and be refused as an output).
    let out = d.join("out").join("o.json");
    let discover = |data: Option<&Path>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        // Not --quiet: it would silence the warning this test reads.
        c.args(["discover", "--model", m.to_str().unwrap(), "--task", "circle", "--bootstraps", "2"]);
        c.args(["--out", out.to_str().unwrap()]).env_remove("MODCIRC_DATA_DIR");
        if let Some(dir) = data {
            c.args(["--data-dir", dir.to_str().unwrap()]);
        }
        c.output().unwrap()
    };
    // No --data-dir: the default (the committed MNIST) is not what the
    // sidecar records, so the run is refused.
    let o = discover(None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("was trained on") && err.contains(d.to_str().unwrap()) && err.contains("--data-dir"), "{err}");
    assert!(!out.exists());
    // --data-dir chooses other data on purpose: a warning naming both, and
    // the output records what it ran on.
    let fixtures = root().join("fixtures/mnist");
    let o = discover(Some(&fixtures));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("warning:") && err.contains("was trained on") && err.contains("(--data-dir)"), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(json["inputs"]["data_dir"].as_str().unwrap().ends_with("fixtures/mnist"));
    assert_eq!(json["inputs"]["data_checksums"].as_array().unwrap().len(), 4);
    // On its own data: not a word about provenance.
    let o = discover(Some(&d));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("trained on"), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}

/// A device node where root may make one (a private directory stands in
/// for /dev), a FIFO otherwise.
fn special_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("null");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid path; mknod and mkfifo only create a file.
    let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0
        || unsafe { libc::mkfifo(c.as_ptr(), 0o666) } == 0;
    assert!(made, "could not make a device or FIFO at {}", p.display());
    p
}

#[test]
fn devices_fifos_and_links_are_never_replaced_and_dash_is_standard_output() {
    use std::os::unix::fs::FileTypeExt;
    let dir = std::env::temp_dir().join(format!("modcirc-special-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = common::write_dead_relu_model(&dir);
    let m = model.to_str().unwrap();
    let node = special_file(&dir);
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let discover = |out: &str| {
        xtask(
            &["discover", "--model", m, "--activation", "relu", "--task", "line", "--k", "4", "--bootstraps", "2"]
                .into_iter()
                .chain(["--sample", "20", "--out", out])
                .collect::<Vec<_>>(),
        )
    };
    for (out, says) in [(&node, "not a regular file"), (&link, "a symbolic link")] {
        let o = discover(out.to_str().unwrap());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(says) && err.contains(out.to_str().unwrap()) && err.contains("--out"), "{err}");
    }
    let t = std::fs::symlink_metadata(&node).unwrap().file_type();
    assert!(t.is_char_device() || t.is_fifo(), "the node is still a node");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let o = xtask(&["train", "--regime", "l1", "--steps", "1", "--out", node.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.join("null.json").exists(), "no sidecar beside the node");
    // `-`: the JSON on standard output, nothing else there; under --quiet
    // (as `xtask` runs it) not even the summary on standard error.
    let o = discover("-");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["schema"], "modcirc.discover/4");
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_training_too_large_for_memory_is_refused_with_its_estimate() {
    let o = xtask(&["train", "--regime", "bimt", "--sizes", "784,100000,100000,10", "--steps", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("would hold about 452.7 GiB") && err.contains("--max-memory 16 GiB"), "{err}");
}

/// Peak resident memory of `xtask args…` on the committed MNIST, in bytes.
fn peak_rss(args: &[&str]) -> u64 {
    // Reaped by `wait4` below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .args(["--data-dir", common::root().join("fixtures/mnist").to_str().unwrap(), "--quiet"])
        .spawn()
        .unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waiting for our own child, with valid out-pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{args:?} failed");
    usage.ru_maxrss as u64 * 1024
}

#[test]
fn the_training_memory_estimate_covers_what_a_training_holds() {
    // A wide BIMT network (penalty, swaps, 3.4 million weights) against the
    // smallest: the difference is what the widths cost beyond the data.
    let d = std::env::temp_dir().join(format!("modcirc-memory-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let run = |sizes: &str| {
        let out = d.join(format!("{sizes}.safetensors"));
        peak_rss(&["train", "--regime", "bimt", "--steps", "2", "--sizes", sizes, "--out", out.to_str().unwrap()])
    };
    let (small, wide) = (run("784,8,10"), run("784,1500,1500,10"));
    let mnist =
        modcirc_dataset::Mnist::load(common::root().join("fixtures/mnist"), modcirc_dataset::ChecksumPolicy::Auto)
            .unwrap();
    let estimate = |sizes: &[usize]| {
        modcirc_bimt::TrainConfig::new(modcirc_bimt::Regime::Bimt).sizes(sizes).estimated_bytes_on(&mnist.train) as u64
    };
    let held = wide.saturating_sub(small) + estimate(&[784, 8, 10]);
    let said = estimate(&[784, 1500, 1500, 10]);
    assert!(held <= said, "held {held} bytes, estimated {said}");
    assert!(held >= said / 3, "the estimate {said} is far above the {held} bytes held");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_discovery_too_large_for_memory_is_refused_with_its_estimate() {
    let dir = std::env::temp_dir().join(format!("modcirc-wide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("wide.safetensors");
    let layer = |n_out: usize, n_in: usize| modcirc_mlp::Linear {
        weight: vec![0.001; n_out * n_in],
        bias: vec![0.0; n_out],
        n_in,
        n_out,
    };
    let m = modcirc_mlp::Mlp::new(vec![layer(20_000, 784), layer(10, 20_000)], modcirc_mlp::Activation::Relu).unwrap();
    modcirc_mlp::file::save(&model, &m).unwrap();
    let o = xtask(&["discover", "--model", model.to_str().unwrap(), "--task", "line", "--max-memory", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("784-20000-10 model would hold up to") && err.contains("--max-memory 1 GiB"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
