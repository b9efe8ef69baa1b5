//! `sweep slurm`: scripts that pass bash and sbatch's rules, run each shard
//! with every flag that changes what it does, and refuse what a script
//! line cannot hold. (`.ci/slurm-test` runs them on a real Slurm; the k8s
//! manifests are run as processes in `sweep.rs`.)

mod common;

use std::path::Path;
use std::process::Output;

use common::xtask;

const PLAN: &str = "[train]\nregime = [\"vanilla\"]\nseed = [0]\nsteps = [10]\nsizes = [\"784-16-10\"]\n[discover]\ntask = [\"line\"]\nk = [4]\n";

fn slurm(plan: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sweep", "slurm", plan.to_str().unwrap(), "--shards", "4", "--out", out.to_str().unwrap()];
    args.extend(extra);
    xtask(&args)
}

/// What bash makes of an `exec` line: its words.
fn bash_words(line: &str) -> Vec<String> {
    let script = format!("set -- {}\nprintf '%s\\0' \"$@\"", line.trim_start_matches("exec "));
    let o = std::process::Command::new("bash").args(["-c", &script]).env("SLURM_ARRAY_TASK_ID", "3").output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().split('\0').filter(|w| !w.is_empty()).map(String::from).collect()
}

#[test]
fn scripts_run_each_shard_with_every_flag_and_pass_bash_and_sbatch_rules() {
    let d = std::env::temp_dir().join(format!("modcirc-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let plan = d.join("my plan's.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let out = d.join("out");
    let o = slurm(&plan, &out, &["--partition", "cpu", "--time", "01:00:00", "--no-verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let array = std::fs::read_to_string(out.join("slurm/array.sbatch")).unwrap();
    let report = std::fs::read_to_string(out.join("slurm/report.sbatch")).unwrap();
    assert!(array.contains("#SBATCH --array=0-3\n") && array.contains("#SBATCH --partition=cpu\n"), "{array}");
    for script in [&array, &report] {
        let o = std::process::Command::new("bash").args(["-n", "-c", script]).output().unwrap();
        assert!(o.status.success(), "bash -n: {}", String::from_utf8_lossy(&o.stderr));
        // sbatch's rules: one option per line, a value without blanks,
        // quotes, '#' or '%' (but the log's %a).
        for l in script.lines().filter(|l| l.starts_with("#SBATCH")) {
            let value = l.split_once('=').map(|(_, v)| v).unwrap_or("");
            assert!(!value.is_empty() && !value.contains([' ', '\t', '\'', '"', '#']), "{l}");
            assert!(value.replace("%a", "").chars().all(|c| c != '%'), "{l}");
        }
    }
    let words = bash_words(array.lines().find(|l| l.starts_with("exec ")).unwrap());
    let plan_abs = plan.to_str().unwrap().to_string();
    assert_eq!(words[1..5], ["sweep".to_string(), "run".into(), plan_abs.clone(), "--shard".into()]);
    assert_eq!(words[5], "3/4");
    for flag in ["--no-verify", "--yes", "--quiet"] {
        assert!(words.iter().any(|w| w == flag), "{flag} missing from {words:?}");
    }
    let words = bash_words(report.lines().find(|l| l.starts_with("exec ")).unwrap());
    assert_eq!(words[1..4], ["sweep".to_string(), "report".into(), plan_abs]);
    assert!(words.iter().any(|w| w == "--no-verify"));

    // A `$` in a path stays literal: only the --shard word is live.
    let odd = d.join("o$SLURM_ARRAY_TASK_ID");
    let o = slurm(&plan, &odd, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let array = std::fs::read_to_string(odd.join("slurm/array.sbatch")).unwrap();
    let words = bash_words(array.lines().find(|l| l.starts_with("exec ")).unwrap());
    assert_eq!(words[words.iter().position(|w| w == "--out").unwrap() + 1], odd.to_str().unwrap());
    assert_eq!(words[5], "3/4");

    // What a script line cannot hold.
    for (flag, value) in [
        ("--partition", "cpu\n#SBATCH --x"),
        ("--partition", ""),
        ("--partition", "a b"),
        ("--time", ""),
        ("--time", "01:00\nrm -rf /"),
        ("--time", "soon"),
    ] {
        let o = slurm(&plan, &out, &[flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    for bad in ["out dir", "o'ut", "#out", "50%"] {
        let o = slurm(&plan, &d.join(bad), &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{bad}: {err}");
        assert!(err.contains("--out") && err.contains("sbatch cannot take"), "{bad}: {err}");
    }
    let nl = d.join("a\nb");
    let o = slurm(&plan, &nl, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("control character"));
    std::fs::remove_dir_all(d).unwrap();
}
