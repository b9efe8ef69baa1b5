//! The edges a new user meets first: every flag explained, each cause of an
//! error said once, unverified data said so once.

mod common;

use common::{root, xtask, xtask_on};

#[test]
fn every_flag_of_every_command_has_help() {
    let commands = ["train", "discover", "beyond", "reproduce", "check-artifacts", "cuda-check", "gpu-check"];
    let mut bare = Vec::new();
    for c in commands {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_xtask")).args([c, "--help"]).output().unwrap();
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
