//! Plans: the study's, and sweep files parsed, expanded and refused.

use std::collections::BTreeSet;
use std::path::Path;

use modcirc_bimt::{Regime, TrainConfig};
use modcirc_engine::plan::Plan;
use modcirc_study::discovery::DiscoverySettings;
use modcirc_study::Profile;

fn parse(text: &str) -> Result<Plan, String> {
    Plan::parse(text, Path::new("sweep.toml")).map_err(|e| e.to_string())
}

#[test]
fn the_empty_plan_is_the_study() {
    let p = parse("").unwrap();
    assert_eq!(p.models.len(), 25);
    assert_eq!(p.tasks.len(), 2);
    assert_eq!(p.settings.len(), 1);
    assert_eq!(p.settings[0].settings, DiscoverySettings::default(), "reproduce's, K-sensitivity rules included");
    assert_eq!(p.models[0].config, TrainConfig::new(Regime::Vanilla));
    assert!(p
        .axes
        .iter()
        .all(|a| a.name == "train.regime" || a.name == "train.seed" || a.name == "discover.task" || !a.swept()));
}

#[test]
fn axes_expand_into_their_product() {
    let p = parse("[train]\nregime=[\"l1\"]\nseed=[0,1]\nlambda=[0.001, 0.01, 0.1]\nsizes=[\"784-20-10\"]\n[discover]\ntask=[\"line\"]\nk=[3,5]\n").unwrap();
    assert_eq!(p.models.len(), 6);
    assert_eq!(p.settings.len(), 2);
    assert_eq!(p.unit_count(), 6 + 6 * 2 * 2);
    assert!(p.models.iter().all(|m| m.config.sizes == [784, 20, 10] && m.config.regime == Regime::L1));
    let lambdas: BTreeSet<String> = p.models.iter().map(|m| p.value_of("train.lambda", m, None, None)).collect();
    assert_eq!(lambdas.len(), 3);
}

#[test]
fn bad_plans_name_the_axis() {
    for (text, says) in [
        ("[train]\nlamda=[1.0]\n", "unknown field `lamda`"),
        ("[trian]\n", "unknown field `trian`"),
        ("[train]\nregime=[\"bimtt\"]\n", "train.regime: \"bimtt\""),
        ("[train]\nseed=[]\n", "train.seed is empty"),
        ("[train]\nseed=[1,1]\n", "train.seed lists 1 twice"),
        ("[train]\nsteps=[0]\n", "train.steps: 0 is not in 1..=10000000"),
        ("[train]\nlambda=[-1.0]\n", "train.lambda: -1 is not a finite number >= 0"),
        ("[train]\nsizes=[\"784-x-10\"]\n", "train.sizes: \"784-x-10\""),
        ("[train]\nactivation=[\"swish\"]\n", "train.activation: \"swish\""),
        ("[discover]\ntask=[\"9:9:9\"]\n", "discover.task"),
        ("[discover]\neps=[1.5]\n", "discover.eps: 1.5 is not in [0, 1)"),
        ("[discover]\nablation=[\"noise\"]\n", "discover.ablation: \"noise\""),
        ("[discover]\nk=[0]\n", "discover.k: 0 is not at least 1"),
        ("[train]\nsizes=[\"784-8-10\"]\n", "discover.k: 15 is wider than a hidden layer of train.sizes 784-8-10"),
        ("[train]\nseed=\"0\"\n", "sweep.toml"),
        ("[planted]\nblock=60\n", "planted.block: 60 is not in 1..=50"),
        ("[planted]\nprofile=\"huge\"\n", "planted.profile: unknown profile \"huge\""),
        ("[planted]\nseed=[]\n", "planted.seed is empty"),
        ("[planted]\nsteps=0\n", "planted.steps: 0 is not in 1..=10000000"),
        ("[planted]\nblok=3\n", "unknown field `blok`"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains(says), "{text:?}: {e}");
        assert!(e.starts_with("sweep.toml"), "{e}");
    }
    let big = parse("[train]\nseed=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99]\nlambda=[0.001,0.002]\n").unwrap();
    assert_eq!(big.unit_count(), 1000 * 4);
    let e = big.check_size(false).unwrap_err().to_string();
    assert!(e.contains("4000 units (1000 models), above the limit of 2000") && !e.contains("--"), "{e}");
    big.check_size(true).unwrap();
}

#[test]
fn the_study_plan_is_the_empty_plan_in_seed_order_with_study_8_and_12_on_every_model() {
    let study = Plan::study(Profile::Full, 5, modcirc_mlp::DeviceSpec::Cpu);
    let sweep = parse("").unwrap();
    assert_eq!(study.settings, sweep.settings);
    assert_eq!(study.models.len(), sweep.models.len());
    for m in &sweep.models {
        assert!(study.models.contains(m));
    }
    let order: Vec<(u64, Regime)> = study.models.iter().map(|m| (m.config.seed, m.config.regime)).collect();
    assert_eq!(order[..5], Regime::ALL.map(|r| (0, r)));
    // STUDY §8 and §12 and STUDY §10 on all 50 discoveries, and the planted
    // suite (per regime 3 planted models, each with its methods' scores,
    // and a Boolean suite).
    let methods = modcirc_study::planted::planted_methods(&Default::default()).len();
    assert_eq!(methods, 8);
    assert_eq!(study.unit_count(), sweep.unit_count() + 25 * 2 + 25 * 2 + 5 * (3 * (1 + methods) + 1));
    assert_eq!(study.beyond, Some(modcirc_study::beyond::BeyondSettings::default()));
    let planted = parse("[train]\nregime=[\"bimt\"]\n[planted]\nprofile=\"quick\"\nseed=[4]\nblock=10\n").unwrap();
    let p = planted.planted.as_ref().unwrap();
    assert_eq!((p.regimes.as_slice(), p.seeds.as_slice(), p.block), (&[Regime::Bimt][..], &[4][..], 10));
    assert_eq!(p.steps, modcirc_study::planted::PlantedSettings::of(Profile::Quick).steps);
}

#[test]
fn a_huge_axis_is_refused_before_its_duplicates_are_sought() {
    let seeds: Vec<String> = (0..1_000_000).map(|s| s.to_string()).collect();
    let t = std::time::Instant::now();
    let e = parse(&format!("[train]\nseed=[{}]\n", seeds.join(","))).unwrap_err();
    assert!(e.contains("train.seed lists 1000000 values, above the limit"), "{e}");
    // Linear work: well under the quadratic check's minutes.
    assert!(t.elapsed().as_secs() < 60);
}

#[test]
fn two_spellings_of_one_data_directory_are_one_value() {
    let dir = std::env::temp_dir().join(format!("modcirc-plan-dirs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("d")).unwrap();
    let plan = dir.join("p.toml");
    let e = Plan::parse("[train]\ndata_dir=[\"d\", \"d/\"]\n", &plan).unwrap_err().to_string();
    assert!(e.contains("train.data_dir (canonical) lists"), "{e}");
    let p = Plan::parse("[train]\ndata_dir=[\"./d/\"]\nseed=[0]\nregime=[\"l1\"]\n", &plan).unwrap();
    assert_eq!(p.models[0].data_dir.as_deref(), Some(dir.join("d").canonicalize().unwrap().as_path()));
    let e = Plan::parse("[train]\ndata_dir=[\"absent\"]\n", &plan).unwrap_err().to_string();
    assert!(e.contains("train.data_dir: \"absent\""), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_controls_table_adds_a_unit_per_discovery_and_bad_values_are_named() {
    let base = "[train]\nregime=[\"l1\"]\nseed=[0,1]\nsizes=[\"784-20-10\"]\n[discover]\ntask=[\"line\"]\nk=[3,5]\n";
    assert!(parse(base).unwrap().controls.is_none(), "no controls unless asked");
    let p = parse(&format!("{base}[controls]\nrandom = 50\n")).unwrap();
    let c = p.controls.as_ref().unwrap();
    assert_eq!((c.random, c.alternatives, c.faithful), (50, 5, 0.8));
    // 2 models, each with 2 settings x (1 discovery + 1 control + ...) and a structure per setting.
    assert_eq!(p.unit_count(), 2 + 2 * 2 * (2 + 1));
    let e = parse(&format!("{base}[controls]\nrandom = 0\n")).unwrap_err();
    assert!(e.contains("controls.random = 0"), "{e}");
    let e = parse(&format!("{base}[controls]\nrandm = 5\n")).unwrap_err();
    assert!(e.contains("randm"), "{e}");
    let study = Plan::study(Profile::Smoke, 1, modcirc_mlp::DeviceSpec::Cpu);
    assert_eq!(study.controls.as_ref().map(|c| c.random), Some(20), "the smoke profile's R");
}
