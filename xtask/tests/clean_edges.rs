//! The edges a new user meets first: every flag explained, each cause of an
//! error said once, unverified data said so once.

mod common;

use common::{root, xtask, xtask_on};

#[test]
fn every_flag_of_every_command_has_help() {
    let commands = ["train", "discover", "beyond", "reproduce", "sweep run", "sweep slurm", "sweep k8s"];
    let mut bare = Vec::new();
    for c in commands {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(c.split(' ').chain(["--help"]))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{c} --help");
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let t = line.trim_start();
            if !t.starts_with('-') {
                continue;
            }
            // `--flag <VALUE>  Its help [default: …]`: the help follows the
            // flag after two spaces or more.
            let help = t.split_once("  ").map_or("", |(_, rest)| rest.trim());
            if help.is_empty() || help.starts_with("[default") {
                bare.push(format!("{c}: {t}"));
            }
        }
    }
    assert!(bare.is_empty(), "flags without help:\n{}", bare.join("\n"));
}

#[test]
fn the_cause_of_an_error_is_said_once() {
    let missing = std::env::temp_dir().join("modcirc-no-such-model.safetensors");
    let o = xtask(&["discover", "--model", missing.to_str().unwrap(), "--task", "circle"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("--model") && err.contains("modcirc-no-such-model.safetensors"), "{err}");
}

#[cfg(unix)]
#[test]
fn data_without_a_checksum_listing_is_said_to_be_unverified_once() {
    let dir = std::env::temp_dir().join(format!("modcirc-unlisted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixtures = root().join("fixtures/mnist");
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::os::unix::fs::symlink(fixtures.join(name), dir.join(name)).unwrap();
    }
    let out = dir.join("m.safetensors");
    let o = xtask_on(&dir, &["train", "--regime", "l1", "--steps", "1", "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("has no SHA256SUMS").count(), 1, "{err}");
    // The committed data has its listing: not a word.
    let o = xtask(&["train", "--regime", "l1", "--steps", "1", "--out", out.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("SHA256SUMS"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn outputs_land_under_the_current_directory_with_the_data_and_a_hash_in_their_name() {
    let dir = std::env::temp_dir().join(format!("modcirc-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = root().join("fixtures/mnist");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["train", "--regime", "l1", "--steps", "1", "--quiet", "--data-dir", data.to_str().unwrap()])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let names: Vec<String> = std::fs::read_dir(dir.join("artifacts/models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let model = names.iter().find(|n| n.ends_with(".safetensors")).expect("a model under ./artifacts/models");
    // l1-seed0-mnist-<12 hex digits>.safetensors
    let hash = model.strip_prefix("l1-seed0-mnist-").and_then(|r| r.strip_suffix(".safetensors")).unwrap_or("");
    assert!(hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{model}");
    // The result line says where it went, quiet or not.
    assert!(String::from_utf8_lossy(&o.stdout).contains(model.as_str()));
    std::fs::remove_dir_all(dir).unwrap();
}
