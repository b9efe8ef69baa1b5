//! The developer checks' command line: usage errors exit 2, a failed check
//! exits 1 naming what failed. (Building this test also builds the
//! `devtask` binary that CI runs, with the test build's features, so CI
//! needs no second build of the workspace's binaries.)

use std::process::Command;

fn devtask(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_devtask")).args(args).output().expect("run devtask");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_usage_error_exits_2_and_a_failed_check_exits_1_naming_the_directory() {
    let (code, err) = devtask(&["check-artifacts"]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = devtask(&["no-such-check"]);
    assert_eq!(code, 2, "{err}");
    let missing = std::env::temp_dir().join(format!("modcirc-devtask-missing-{}", std::process::id()));
    let (code, err) = devtask(&["check-artifacts", missing.to_str().expect("a UTF-8 temp path")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}
