//! `reproduce`'s cache checks itself, `check-artifacts` (devtask; here its library call) checks every file
//! `results.json` refers to, and what a killed run left is cleaned up.

mod common;

use common::{root, xtask};

use std::path::{Path, PathBuf};
use std::process::Output;

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    err
}

fn failed(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

/// The one file in `dir` whose name starts with `prefix` and ends with `suffix`.
fn find(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    hits.pop().unwrap()
}

fn reproduce(out: &Path) -> Output {
    // Not quiet: the warnings are what this test reads.
    let data = root().join("fixtures/mnist");
    std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["reproduce", "--profile", "smoke", "--out", out.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap()
}

/// `cargo devtask check-artifacts`, as a library call.
fn check(out: &Path) -> Result<(), String> {
    modcirc_present::check::check_artifacts(out).map(|_| ()).map_err(|e| e.to_string())
}

fn check_fails(out: &Path, needles: &[&str]) {
    let e = check(out).unwrap_err();
    for n in needles {
        assert!(e.contains(n), "{n:?} not in: {e}");
    }
}

/// The tests here that start from a whole smoke study.
const STUDY_USERS: usize = 2;

/// Copies the smoke study the tests here share (run once, by the first
/// to ask) into `to`, with its report where `report`; the last of the
/// [`STUDY_USERS`] to take its copy removes it. CI checks the rendered
/// report and compares a sharded run with this study rather than running
/// the smoke study once more: a copy of it where MODCIRC_KEEP_SMOKE_STUDY
/// says.
fn copy_smoke_study(to: &Path, report: bool) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    static STUDY: OnceLock<PathBuf> = OnceLock::new();
    static TAKEN: AtomicUsize = AtomicUsize::new(0);
    let study = STUDY.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("modcirc-smoke-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        ok(&reproduce(&out));
        check(&out).unwrap();
        if let Some(keep) = std::env::var_os("MODCIRC_KEEP_SMOKE_STUDY") {
            copy_tree(&out, Path::new(&keep), true);
            check(Path::new(&keep)).unwrap();
        }
        out
    });
    let _ = std::fs::remove_dir_all(to);
    copy_tree(study, to, report);
    if TAKEN.fetch_add(1, Ordering::SeqCst) + 1 == STUDY_USERS {
        std::fs::remove_dir_all(study).unwrap();
    }
}

#[test]
fn an_edited_or_truncated_cached_file_is_caught_and_recomputed() {
    let out = std::env::temp_dir().join(format!("modcirc-cache-{}", std::process::id()));
    copy_smoke_study(&out, true);
    check(&out).unwrap();
    one_report_at_a_time(&out);

    // A model edited in place (one bit of one weight), still a valid file.
    let model = find(&out.join("models"), "bimt-seed0-", ".safetensors");
    let original = std::fs::read(&model).unwrap();
    let mut edited = original.clone();
    let at = edited.len() - 100;
    edited[at] ^= 1;
    std::fs::write(&model, &edited).unwrap();
    check_fails(&out, &[model.file_name().unwrap().to_str().unwrap(), "does not match the SHA-256"]);
    // A discovery truncated, another deleted.
    let truncated = find(&out.join("discover"), "l1-seed0-circle-", ".json");
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let deleted = find(&out.join("discover"), "l1-seed0-line-", ".json");
    std::fs::remove_file(&deleted).unwrap();
    // What a killed run leaves: a temporary file and a model without its listing.
    let host = modcirc_store::atomic::host_in_name();
    let stale =
        out.join("models").join(format!("vanilla-seed0-000000000000.safetensors.tmp-4999999-0123456789abcdef-{host}"));
    std::fs::write(&stale, b"half a model").unwrap();

    let err = ok(&reproduce(&out));
    for culprit in [&model, &truncated] {
        let name = culprit.display().to_string();
        assert!(err.contains(&format!("warning: {name} does not match its recorded SHA-256")), "{err}");
    }
    assert!(err.contains(&format!("removed {}", stale.display())), "{err}");
    // What was intact is reused; what was not is recomputed.
    let line = |who: &str| err.lines().find(|l| l.starts_with("[train]") && l.contains(who)).unwrap().to_string();
    assert!(line("Vanilla seed 0").ends_with("(cached)"), "{err}");
    assert!(!line("BIMT seed 0").ends_with("(cached)"), "{err}");
    // Retrained, not reused: the same seed gives the same weights again
    // (a discovery records its wall time, so only its length is compared).
    assert!(std::fs::read(&model).unwrap() == original, "retrained {} differs", model.display());
    assert!(std::fs::read(&truncated).unwrap().len() > bytes.len() / 2);
    assert!(deleted.exists() && !stale.exists());
    check(&out).unwrap();

    hostile_paths_are_neither_followed_nor_read(&out);

    // A file results.json lists but the directory lacks.
    std::fs::remove_file(out.join("figures/fig6_training_time.svg")).unwrap();
    check_fails(&out, &["fig6_training_time.svg"]);

    // A FIFO at a cached unit's listing: a clear error at once, not a hang.
    let listing = find(&out.join("models"), "vanilla-seed0-", ".sha256");
    std::fs::remove_file(&listing).unwrap();
    mkfifo(&listing);
    let o = reproduce(&out);
    failed(&o, &[listing.to_str().unwrap(), "a FIFO"]);
    std::fs::remove_file(&listing).unwrap();
    std::fs::remove_dir_all(out).unwrap();
}

/// A run whose report's claim another process holds (here, this test)
/// writes none of its report until the claim is released: two runs on one
/// directory leave one run's report, whole.
fn one_report_at_a_time(out: &Path) {
    use modcirc_store::claim::{try_claim, Attempt};
    let Attempt::Won(claim) = try_claim(&out.join("results.json"), "another run's report").unwrap() else {
        panic!("the report's claim is free")
    };
    let before = std::fs::read(out.join("REPORT.md")).unwrap();
    let data = root().join("fixtures/mnist");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["reproduce", "--profile", "smoke", "--quiet", "--out", out.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Every unit is cached: the run reaches its report within seconds.
    std::thread::sleep(std::time::Duration::from_secs(15));
    assert!(std::fs::read(out.join("REPORT.md")).unwrap() == before, "written while another run held the report");
    drop(claim);
    ok(&child.wait_with_output().unwrap());
    assert!(std::fs::read(out.join("REPORT.md")).unwrap() != before, "written once the claim was free");
    check(out).unwrap();
}

/// `from`'s directories and regular files, copied into `to` (made here);
/// without `report`, only the cached units (the units' directories, not
/// the report's files and figures at the top).
fn copy_tree(from: &Path, to: &Path, report: bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (kind, target) = (entry.file_type().unwrap(), to.join(entry.file_name()));
        if kind.is_dir() && (report || entry.file_name() != "figures") {
            copy_tree(&entry.path(), &target, true);
        } else if kind.is_file() && report {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// `check-artifacts` reads only the run's own regular files, through no
/// link, no further than their recorded size; each case is undone after.
fn hostile_paths_are_neither_followed_nor_read(out: &Path) {
    let results = out.join("results.json");
    let original = std::fs::read(&results).unwrap();
    let outside = out.with_extension("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // Paths outside the run, recorded with the right hash and size.
    let victim = outside.join("victim");
    std::fs::write(&victim, b"not the run's").unwrap();
    let rel = format!("../{}/victim", outside.file_name().unwrap().to_str().unwrap());
    for path in [rel.as_str(), victim.to_str().unwrap()] {
        let mut json: serde_json::Value = serde_json::from_slice(&original).unwrap();
        let record = serde_json::json!({
            "path": path, "sha256": modcirc_store::sha256_hex(b"not the run's"), "bytes": 13
        });
        json["files"].as_array_mut().unwrap().push(record);
        std::fs::write(&results, serde_json::to_vec(&json).unwrap()).unwrap();
        check_fails(out, &["not a relative path inside"]);
    }
    std::fs::write(&results, &original).unwrap();
    check(out).unwrap();

    // A figure that is a FIFO, a link to a copy outside, or huge and sparse.
    let fig = out.join("figures/fig3_sparsity_vs_logit_difference.png");
    let saved = outside.join("saved.png");
    std::fs::rename(&fig, &saved).unwrap();
    mkfifo(&fig);
    check_fails(out, &["fig3_sparsity_vs_logit_difference.png", "a FIFO"]);
    std::fs::remove_file(&fig).unwrap();
    std::os::unix::fs::symlink(&saved, &fig).unwrap();
    check_fails(out, &["fig3_sparsity_vs_logit_difference.png", "a symbolic link"]);
    std::fs::remove_file(&fig).unwrap();
    std::fs::copy(&saved, &fig).unwrap();
    let html = out.join("REPORT.html");
    let page = std::fs::read(&html).unwrap();
    std::fs::File::options().write(true).open(&html).unwrap().set_len(3 << 30).unwrap();
    let t = std::time::Instant::now();
    check_fails(out, &["REPORT.html", "results.json records"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(20), "the 3 GB file was read");
    std::fs::write(&html, &page).unwrap();
    check(out).unwrap();

    // The models' directory a link to a copy of itself outside the run.
    let models = out.join("models");
    let moved = outside.join("models");
    std::fs::rename(&models, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &models).unwrap();
    check_fails(out, &["models", "a symbolic link"]);
    std::fs::remove_file(&models).unwrap();
    std::fs::rename(&moved, &models).unwrap();
    check(out).unwrap();
    std::fs::remove_dir_all(outside).unwrap();
}

#[test]
fn reproduce_refuses_the_data_directory_as_its_output() {
    let data = root().join("fixtures/mnist");
    let before: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).collect();
    let o = xtask(&["reproduce", "--profile", "smoke", "--out", data.to_str().unwrap()]);
    failed(&o, &["--out", "is the data directory", "--data-dir"]);
    let after: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(before, after);
}

#[test]
fn check_artifacts_accepts_a_run_of_one_seed() {
    let out = std::env::temp_dir().join(format!("modcirc-one-seed-{}", std::process::id()));
    // The shared study's units: seed 0's are reused, its report is not there.
    copy_smoke_study(&out, false);
    let o = xtask(&["reproduce", "--profile", "smoke", "--seeds", "1", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r = modcirc_present::check::check_artifacts(&out).unwrap();
    assert!(r.across_seeds.is_none() && r.models.len() == 5);
    assert!(!out.join("figures/fig10_across_seeds.png").exists());
    std::fs::remove_dir_all(out).unwrap();
}
