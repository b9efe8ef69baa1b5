//! A sweep plan's flags (`PLAN --out --data-dir --yes --quiet`), shared by
//! every `sweep` subcommand, and the workload they open.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use modcirc_engine::{EngineError, Plan, Workload};

use crate::flags::{artifacts_dir, DataArgs};

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The plan: a TOML file of axes (see README, "Running a sweep on a cluster").
    pub plan: PathBuf,
    /// The sweep's directory (the shared cache); default artifacts/sweep-<plan's name>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Accept a plan above the size limit.
    #[arg(long)]
    pub yes: bool,
    /// No progress bars or progress lines; warnings, errors and results still print.
    #[arg(long)]
    pub quiet: bool,
}

/// The plan of `args`, checked, with its data sets loaded, laid out in
/// its directory.
pub fn open(args: &PlanArgs) -> anyhow::Result<Workload> {
    let plan = Plan::read(&args.plan)?;
    plan.check_size(args.yes).map_err(|e| match e {
        EngineError::TooLarge { .. } => anyhow::anyhow!("{e} with --yes"),
        e => e.into(),
    })?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.plan.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        artifacts_dir().join(format!("sweep-{stem}"))
    });
    let mut data = BTreeMap::new();
    for m in &plan.models {
        if !data.contains_key(&m.data_dir) {
            let d = DataArgs { data_dir: m.data_dir.clone().or(args.data.data_dir.clone()), ..args.data.clone() };
            let mnist = d.load().with_context(|| format!("train.data_dir of {}", args.plan.display()))?;
            data.insert(m.data_dir.clone(), mnist);
        }
    }
    Workload::new(plan, out, data).with_context(|| format!("{}", args.plan.display()))
}
