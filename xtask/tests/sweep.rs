//! `sweep`: bad plans refused with the axis named, shards that together
//! compute each unit once, two processes sharing one directory through
//! claims, an abandoned claim picked up, and a report that lists what is
//! missing. (`.ci/slurm-test` runs the same plans through a real Slurm.)

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::xtask;
use modcirc_study::sweep::SweepResults;

/// A plan small enough for a test: 2 regimes x 2 seeds of a 784-16-16-10
/// net, 40 steps, one task, 2 resamples of 20 pairs.
const TINY: &str = r#"
[train]
regime = ["vanilla", "bimt"]
seed = [0, 1]
steps = [40]
sizes = ["784-16-16-10"]

[discover]
task = ["line"]
k = [5]
bootstraps = [2]
sample = [20]
"#;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("modcirc-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_plan(d: &Path, text: &str) -> PathBuf {
    let p = d.join("plan.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The results with every time zeroed: what must not depend on who ran it.
fn untimed(path: &Path) -> SweepResults {
    let mut r: SweepResults = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for m in &mut r.models {
        m.train_seconds = 0.0;
    }
    for d in &mut r.discoveries {
        d.discovery_seconds = modcirc_metrics::Summary { mean: 0.0, lo: 0.0, hi: 0.0, n: 0 };
    }
    for a in &mut r.analyses {
        a.seconds = 0.0;
    }
    r
}

/// "N units computed" of a shard's closing line.
fn computed(out: &str) -> usize {
    let line = out.lines().find(|l| l.contains("units computed")).unwrap_or_else(|| panic!("no closing line: {out}"));
    line.split(", ").find_map(|p| p.strip_suffix(" units computed")).unwrap().parse().unwrap()
}

#[test]
fn bad_plans_and_flags_are_refused_with_what_is_wrong() {
    let d = dir("bad");
    for (text, says) in [
        ("[train]\nlamda = [0.1]\n", "unknown field `lamda`"),
        ("[train]\nregime = [\"bimtt\"]\n", "train.regime: \"bimtt\""),
        ("[train]\nseed = []\n", "train.seed is empty"),
        ("[discover]\nk = [500]\n", "discover.k: 500 is wider than a hidden layer"),
        ("[train]\nsizes = [\"100-20-10\"]\n[discover]\nk = [5]\n", "train.sizes 100-20-10"),
    ] {
        let plan = write_plan(&d, text);
        let o = xtask(&["sweep", "plan", s(&plan)]);
        assert_eq!(o.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says) && err.contains("plan.toml"), "{text}: {err}");
    }
    let plan = write_plan(&d, TINY);
    for (shard, says) in [("4/4", "I must be in 0..=3"), ("1/0", "N must be in 1..=100000"), ("x", "is not I/N")] {
        let o = xtask(&["sweep", "run", s(&plan), "--shard", shard, "--out", s(&d.join("o"))]);
        assert_eq!(o.status.code(), Some(2), "{shard}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{shard}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // 1 000 seeds x 4 lambdas: 4 000 models, refused without --yes.
    let seeds: Vec<String> = (0..1000).map(|s| s.to_string()).collect();
    let big = format!("[train]\nregime=[\"l1\"]\nseed=[{}]\nlambda=[0.1,0.2,0.3,0.4]\n", seeds.join(","));
    let plan = write_plan(&d, &big);
    let o = xtask(&["sweep", "plan", s(&plan)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("16000 units (4000 models), above the limit of 2000") && err.contains("--yes"), "{err}");
    assert!(!d.join("o").exists(), "nothing written");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn shards_compute_each_unit_once_and_gather_what_one_process_does() {
    let d = dir("shards");
    let plan = write_plan(&d, TINY);
    let (one, two) = (d.join("one"), d.join("two"));
    let out = ok(&xtask(&["sweep", "run", s(&plan), "--out", s(&one)]));
    assert_eq!(computed(&out), 4 + 4 + 4, "{out}");
    ok(&xtask(&["sweep", "report", s(&plan), "--out", s(&one)]));

    // Half the shards: the report says what is missing, and where to look.
    let first = ok(&xtask(&["sweep", "run", s(&plan), "--shard", "0/2", "--out", s(&two)]));
    let o = xtask(&["sweep", "report", s(&plan), "--out", s(&two)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("of 12 units are not in") && err.contains("sweep status"), "{err}");
    let status = ok(&xtask(&["sweep", "status", s(&plan), "--out", s(&two)]));
    assert!(status.contains("6 of 12 units done") && status.contains("missing"), "{status}");
    let second = ok(&xtask(&["sweep", "run", s(&plan), "--shard", "1/2", "--out", s(&two)]));
    assert_eq!(computed(&first) + computed(&second), 12, "each unit computed by one shard");
    ok(&xtask(&["sweep", "report", s(&plan), "--out", s(&two)]));
    assert_eq!(untimed(&one.join("results.json")), untimed(&two.join("results.json")));
    let csv = std::fs::read_to_string(two.join("units.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 12, "a row per unit");
    assert!(two.join("figures/logit_difference_vs_regime.png").exists());
    for name in std::fs::read_dir(one.join("models")).unwrap().map(|e| e.unwrap().file_name()) {
        let (a, b) =
            (std::fs::read(one.join("models").join(&name)).unwrap(), std::fs::read(two.join("models").join(&name)));
        if name.to_string_lossy().ends_with(".safetensors") {
            assert_eq!(a, b.unwrap(), "{name:?}: the same bytes whichever shard trained it");
        }
    }
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn two_processes_on_one_directory_share_the_work_through_claims() {
    let d = dir("claims");
    let plan = write_plan(&d, TINY);
    let out = d.join("out");
    // A claim left by a process that no longer exists: picked up again.
    let models = out.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let listing = ok(&xtask(&["sweep", "plan", s(&plan), "--out", s(&out)]));
    let key = listing
        .lines()
        .find(|l| l.contains("vanilla") && l.contains("seed 0"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let claim = models.join(format!("vanilla-seed0-{key}.safetensors.claim"));
    let host = modcirc_store::atomic::host_name();
    std::fs::write(&claim, format!(r#"{{"host":"{host}","pid":4999999,"started":1,"what":"killed","token":"x"}}"#))
        .unwrap();
    let status = ok(&xtask(&["sweep", "status", s(&plan), "--out", s(&out)]));
    assert!(status.contains("1 abandoned") && status.contains("process 4999999"), "{status}");

    let bin = env!("CARGO_BIN_EXE_xtask");
    let data = common::root().join("fixtures/mnist");
    let spawn = || {
        std::process::Command::new(bin)
            .args(["sweep", "run", s(&plan), "--out", s(&out), "--jobs", "2", "--quiet", "--data-dir", s(&data)])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (ok(&a.wait_with_output().unwrap()), ok(&b.wait_with_output().unwrap()));
    assert_eq!(computed(&a) + computed(&b), 12, "each unit computed once:\n{a}\n{b}");
    assert!(!claim.exists(), "the abandoned claim was taken over and released");
    let left: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".claim") || n.contains(".tmp") || n.contains(".abandoned-")
        })
        .collect();
    assert!(left.is_empty(), "claims or temporary files left: {left:?}");
    let status = ok(&xtask(&["sweep", "status", s(&plan), "--out", s(&out)]));
    assert!(status.contains("12 of 12 units done"), "{status}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_run_killed_mid_training_leaves_a_claim_the_next_run_takes_over() {
    let d = dir("killed");
    // One model that trains for a second or two: time to kill it.
    let plan = write_plan(
        &d,
        "[train]\nregime = [\"bimt\"]\nseed = [0]\nsteps = [3000]\n[discover]\ntask = [\"line\"]\nbootstraps = [2]\nsample = [20]\n",
    );
    let out = d.join("out");
    let data = common::root().join("fixtures/mnist");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["sweep", "run", s(&plan), "--out", s(&out), "--quiet", "--data-dir", s(&data)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let claimed = || walk_if(&out.join("models")).into_iter().any(|p| p.to_string_lossy().ends_with(".claim"));
    let t = std::time::Instant::now();
    while !claimed() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(claimed(), "the run claimed its model");
    child.kill().unwrap(); // SIGKILL: no destructor runs, the claim stays
    child.wait().unwrap();
    let status = ok(&xtask(&["sweep", "status", s(&plan), "--out", s(&out)]));
    assert!(status.contains("0 of 3 units done") && status.contains("1 abandoned"), "{status}");
    let again = ok(&xtask(&["sweep", "run", s(&plan), "--out", s(&out)]));
    assert_eq!(computed(&again), 3, "{again}");
    let status = ok(&xtask(&["sweep", "status", s(&plan), "--out", s(&out)]));
    assert!(status.contains("3 of 3 units done"), "{status}");
    let left: Vec<_> = walk(&out).into_iter().filter(|p| p.to_string_lossy().contains(".claim")).collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(d).unwrap();
}

fn walk_if(d: &Path) -> Vec<PathBuf> {
    if d.is_dir() {
        walk(d)
    } else {
        Vec::new()
    }
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn reproduce_report_only_lists_what_the_shards_have_not_made() {
    let d = dir("report-only");
    let o = xtask(&["reproduce", "--profile", "smoke", "--report-only", "--out", s(&d)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--report-only: 130 of 130 units are not in") && err.contains("--shard"), "{err}");
    let o = xtask(&["reproduce", "--profile", "smoke", "--report-only", "--shard", "0/2", "--out", s(&d)]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!d.join("results.json").exists());
    std::fs::remove_dir_all(d).unwrap();
}

/// What Kubernetes makes of a `command` or `args` string: `$$` is `$`,
/// `$(NAME)` a defined variable's value (left as it is otherwise).
fn k8s_expand(s: &str, env: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with("$$") {
            out.push('$');
            i += 2;
            continue;
        }
        if let Some(name) = rest.strip_prefix("$(").and_then(|r| r.split_once(')')).map(|(n, _)| n) {
            if let Some((_, v)) = env.iter().find(|(k, _)| *k == name) {
                out.push_str(v);
                i += name.len() + 3;
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The argv of a manifest's container as Kubernetes runs it in pod `index`.
fn pod_argv(manifest: &Path, index: usize) -> Vec<String> {
    let doc: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let c = &doc["spec"]["template"]["spec"]["containers"][0];
    let index = index.to_string();
    c["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .chain(c["args"].as_sequence().unwrap())
        .map(|v| k8s_expand(v.as_str().unwrap(), &[("JOB_COMPLETION_INDEX", &index)]))
        .collect()
}

/// `sweep k8s PLAN --shards 3 ... --out OUT`: what it prints.
fn k8s_manifests(plan: &Path, out: &Path) -> String {
    let args =
        ["sweep", "k8s", s(plan), "--shards", "3", "--image", "reg/modcirc:1", "--claim", "sweep", "--out", s(out)];
    ok(&xtask(&args))
}

#[test]
fn k8s_manifests_keep_every_dollar_literal_and_each_sweep_its_own_names() {
    let d = dir("k8s-dollars");
    let plan_dir = d.join("p$(HOME)");
    std::fs::create_dir_all(&plan_dir).unwrap();
    let plan = write_plan(&plan_dir, TINY);
    let mut names = Vec::new();
    for out in [d.join("a$$b"), d.join("x$(JOB_COMPLETION_INDEX)y")] {
        let printed = k8s_manifests(&plan, &out);
        assert!(!printed.contains("-1s") && printed.contains("Failed"), "a failed shard ends the wait: {printed}");
        let argv = pod_argv(&out.join("k8s/shards.yaml"), 2);
        let after = |flag: &str| argv[argv.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(after("--out"), out.to_str().unwrap(), "{argv:?}");
        assert_eq!(after("--shard"), "2/3");
        assert_eq!(argv[3], plan.to_str().unwrap());
        let report = pod_argv(&out.join("k8s/report.yaml"), 0);
        assert_eq!(report[report.iter().position(|a| a == "--out").unwrap() + 1], out.to_str().unwrap());
        let doc: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(out.join("k8s/shards.yaml")).unwrap()).unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        assert!(printed.contains(&format!("job/{name}")), "{printed}");
        names.push(name);
    }
    assert_ne!(names[0], names[1], "two sweeps, two Job names");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_k8s_indexed_job_run_as_parallel_processes_gives_the_single_process_results() {
    let d = dir("k8s");
    let plan = write_plan(&d, TINY);
    let (pods, one) = (d.join("pods"), d.join("one"));
    let data = common::root().join("fixtures/mnist");
    let printed = k8s_manifests(&plan, &pods);
    assert!(printed.contains("kubectl apply -f") && printed.contains("job/modcirc-sweep"), "{printed}");
    let manifest = pods.join("k8s/shards.yaml");
    let doc: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(doc["spec"]["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(doc["spec"]["completions"].as_u64(), Some(3));
    let children: Vec<_> = (0..3)
        .map(|i| {
            let argv = pod_argv(&manifest, i);
            assert_eq!(argv[argv.iter().position(|a| a == "--shard").unwrap() + 1], format!("{i}/3"));
            std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .env("MODCIRC_DATA_DIR", &data)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let done: usize = children.into_iter().map(|c| computed(&ok(&c.wait_with_output().unwrap()))).sum();
    assert_eq!(done, 12, "each unit computed by one pod");
    let report = pod_argv(&pods.join("k8s/report.yaml"), 0);
    let o = std::process::Command::new(&report[0]).args(&report[1..]).env("MODCIRC_DATA_DIR", &data).output().unwrap();
    ok(&o);
    ok(&xtask(&["sweep", "run", s(&plan), "--out", s(&one)]));
    ok(&xtask(&["sweep", "report", s(&plan), "--out", s(&one)]));
    assert_eq!(untimed(&one.join("results.json")), untimed(&pods.join("results.json")));
    std::fs::remove_dir_all(d).unwrap();
}

/// `sweep status` on a cache it may not read is an error naming the
/// directory, not "missing" with exit 0. Root reads everything, so as root
/// the command runs as `nobody` (through `setpriv`).
#[test]
fn sweep_status_reports_a_cache_it_cannot_read() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir("unreadable");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plan = write_plan(&d, TINY);
    std::fs::set_permissions(&plan, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = d.join("out");
    std::fs::create_dir_all(out.join("models")).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(out.join("models"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // The binary and the data, where nobody may read them (a checkout in a
    // `mktemp -d` directory is root's alone).
    let (data, bin) = (d.join("mnist"), d.join("xtask"));
    std::fs::create_dir(&data).unwrap();
    for e in std::fs::read_dir(common::root().join("fixtures/mnist")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    std::fs::copy(env!("CARGO_BIN_EXE_xtask"), &bin).unwrap();
    for p in [&data, &bin] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let args = ["sweep", "status", s(&plan), "--out", s(&out), "--data-dir", s(&data), "--quiet"];
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", s(&bin)]);
        c
    } else {
        std::process::Command::new(&bin)
    };
    let o = cmd.args(args).output().expect("setpriv (util-linux) runs the command as nobody");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", String::from_utf8_lossy(&o.stdout));
    assert!(err.contains("models") && err.contains("ermission denied"), "{err}");
    std::fs::set_permissions(out.join("models"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_dir_all(d).unwrap();
}

/// A plan's `[controls]`: a controls unit per discovery, summarised in the
/// results, a `controls` row each in `units.csv`, and drawn against the axes.
#[test]
fn a_plan_with_controls_reports_them_against_its_axes() {
    let d = dir("controls");
    let plan = write_plan(&d, &format!("{TINY}\n[controls]\nrandom = 5\nalternatives = 2\n"));
    let out = d.join("out");
    let run = ok(&xtask(&["sweep", "run", s(&plan), "--out", s(&out)]));
    assert_eq!(computed(&run), 4 + 4 + 4 + 4, "{run}");
    ok(&xtask(&["sweep", "report", s(&plan), "--out", s(&out)]));
    let r = untimed(&out.join("results.json"));
    assert!(r.discoveries.iter().all(|u| u.controls.as_ref().is_some_and(|c| c.p_random.is_some())), "{r:?}");
    let csv = std::fs::read_to_string(out.join("units.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("controls,")).count(), 4);
    assert!(out.join("figures/margin_over_random_vs_regime.png").exists());
    std::fs::remove_dir_all(d).unwrap();
}

/// A plan with `[planted]`: its units counted, run by shards once each, and
/// reported with the same scores as one process's run (timings aside).
#[test]
fn a_plan_with_planted_truth_runs_it_by_shard_and_reports_it() {
    let d = dir("planted");
    let plan = write_plan(
        &d,
        &format!("{TINY}\n[planted]\nprofile = \"smoke\"\nsteps = 10\npairs = 10\nboolean_seed = [0]\n"),
    );
    let (one, two) = (d.join("one"), d.join("two"));
    let out = ok(&xtask(&["sweep", "run", s(&plan), "--out", s(&one)]));
    // 12 units of the models; per regime a planted model, each of its eight
    // methods' scores on it, and a Boolean suite.
    assert_eq!(computed(&out), 12 + 2 * (1 + 8 + 1), "{out}");
    ok(&xtask(&["sweep", "report", s(&plan), "--out", s(&one)]));
    let first = ok(&xtask(&["sweep", "run", s(&plan), "--shard", "0/2", "--out", s(&two)]));
    let status = ok(&xtask(&["sweep", "status", s(&plan), "--out", s(&two)]));
    assert!(status.contains("of 32 units done") && !status.contains("32 of 32"), "{status}");
    let done: usize = status.split(": ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    assert_eq!(done, computed(&first), "the census counts what the shard computed: {status}");
    let o = xtask(&["sweep", "report", s(&plan), "--out", s(&two)]);
    assert_eq!(o.status.code(), Some(1), "a report before every shard ran");
    let second = ok(&xtask(&["sweep", "run", s(&plan), "--shard", "1/2", "--out", s(&two)]));
    assert_eq!(computed(&first) + computed(&second), 32, "each unit computed by one shard");
    let status = ok(&xtask(&["sweep", "status", s(&plan), "--out", s(&two)]));
    assert!(status.contains("32 of 32 units done"), "{status}");
    ok(&xtask(&["sweep", "report", s(&plan), "--out", s(&two)]));
    let planted = |dir: &Path| {
        let mut p = untimed(&dir.join("results.json")).planted.expect("the planted suite in the report");
        p.seconds = 0.0;
        for m in &mut p.models {
            m.tasks.iter_mut().flat_map(|t| t.methods.iter_mut()).for_each(|x| x.seconds = 0.0);
        }
        p
    };
    let (a, b) = (planted(&one), planted(&two));
    assert_eq!(a, b);
    assert_eq!(a.models.len(), 2);
    assert_eq!(a.boolean.len(), 2 * 4 * 3, "2 regimes x 4 functions x 3 widths x 1 seed");
    let all = modcirc_study::planted::PlantedSettings::of(modcirc_study::Profile::Smoke).methods.len();
    assert!(a.models.iter().all(|m| m.tasks.len() == 3 && m.tasks.iter().all(|t| t.methods.len() == all)));
    assert!(two.join("PLANTED.md").exists() && two.join("figures/planted_roc.png").exists());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn two_data_directories_holding_the_same_files_are_refused_not_run_twice() {
    let d = dir("same-data");
    let copy = d.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    let data = common::root().join("fixtures/mnist");
    for e in std::fs::read_dir(&data).unwrap().flatten() {
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let plan = write_plan(
        &d,
        &format!(
            "[train]\nregime = [\"l1\"]\nseed = [0]\nsteps = [10]\nsizes = [\"784-16-10\"]\ndata_dir = [{:?}, {:?}]\n[discover]\ntask = [\"line\"]\nk = [4]\n",
            data.to_str().unwrap(),
            copy.to_str().unwrap()
        ),
    );
    let o = xtask(&["sweep", "status", s(&plan), "--out", s(&d.join("out"))]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("holds the same data as") && err.contains("copy"), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}
