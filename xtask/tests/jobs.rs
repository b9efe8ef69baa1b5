//! Trainings that run at once give the bytes of a sequential run.

mod common;

use common::xtask;

#[test]
fn checkpoints_are_byte_identical_with_one_or_two_jobs() {
    let dir = std::env::temp_dir().join(format!("modcirc-jobs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for jobs in ["1", "2"] {
        let out = dir.join(jobs);
        let o = xtask(&["train", "--all", "--steps", "100", "--jobs", jobs, "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.join("1"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".safetensors"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 5, "{names:?}");
    for name in names {
        let (a, b) =
            (std::fs::read(dir.join("1").join(&name)).unwrap(), std::fs::read(dir.join("2").join(&name)).unwrap());
        assert!(a == b, "{name:?} differs between --jobs 1 and --jobs 2");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
