//! `cargo devtask gpu-check`: on a machine with a GPU, checks the CUDA path
//! against the CPU: the position-cost kernel against the CPU op and the naive
//! relocation (same swaps), the device patching sweep against the CPU sweep
//! (same scores and circuit), and short training runs on the GPU against the
//! fused CPU trainer (same swaps; logits next to the drift between two CPU
//! runs whose starts differ by one ulp, the floor any two implementations of
//! an L1-penalised run can reach). `--device cpu` runs the
//! same comparisons through candle's CPU backend.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;
use clap::Args;
use modcirc_acdc::{DeviceSweep, PatchingSweep, TaskImages};
use modcirc_bimt::candle_train::CandleTrainer;
use modcirc_bimt::position_costs::position_costs;
use modcirc_bimt::relocate::{apply_swap, greedy_swaps, importance_ranking, relocate_naive, Relocator, TOP_POSITIONS};
use modcirc_bimt::{ConnectionCost, Regime, TrainConfig, Trainer};
use modcirc_dataset::{Bootstrap, Mnist, PairedDataset, Task};
use modcirc_mlp::{DeviceSpec, Mlp};
use serde::Serialize;

use crate::DataDir;

#[derive(Args, Debug)]
pub struct GpuCheckArgs {
    /// The GPU to check against the CPU: cuda or cuda:N.
    #[arg(long, default_value = "cuda")]
    pub device: DeviceSpec,
    /// Steps of the short CPU-vs-GPU training comparison (one relocation at 500).
    #[arg(long, default_value_t = 520, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub steps: i64,
    /// Where to write gpu-check.json.
    #[arg(long, default_value = "gpu-check")]
    pub out: PathBuf,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Serialize)]
struct KernelCheck {
    layer: usize,
    max_relative_difference_vs_cpu: f64,
    kernel_ms: f64,
}

#[derive(Serialize)]
struct TrainCheck {
    regime: Regime,
    steps: usize,
    same_swaps: bool,
    cpu_swaps: usize,
    gpu_swaps: usize,
    max_logit_difference: f64,
    max_weight_difference: f64,
    /// The CPU trainer against itself with one weight of the start moved by
    /// one ulp: how far two runs drift apart from rounding alone (the L1
    /// penalty's sign flips on near-zero weights amplify it).
    cpu_vs_perturbed_cpu_logit_difference: f64,
    cpu_s: f64,
    gpu_s: f64,
}

#[derive(Serialize)]
struct SweepCheck {
    task: String,
    pairs: usize,
    max_relative_score_difference: f64,
    same_selection: bool,
    /// Median of one 500-pair resample's sweep and selection, as `discover` times it.
    cpu_ms: f64,
    device_ms: f64,
}

#[derive(Serialize)]
struct Report {
    device: String,
    kernel: Vec<KernelCheck>,
    kernel_swaps_match_naive: bool,
    kernel_swaps: usize,
    sweep: SweepCheck,
    training: Vec<TrainCheck>,
}

fn max_difference(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(p, q)| (p - q).abs() as f64).fold(0.0, f64::max)
}

fn median_ms(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?; // warm-up: kernels compiled and loaded
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The device sweep against the CPU sweep on one task's pairs.
fn check_sweep(model: &Mlp, mnist: &Mnist, device: &Device) -> anyhow::Result<SweepCheck> {
    let task = Task::circle();
    let pairs = PairedDataset::new(&mnist.test, &task, 0)?;
    let images = TaskImages::from_pairs(&mnist.test, &pairs.pairs);
    let sweep = PatchingSweep::new(model, &images)?;
    let on_device = DeviceSweep::new(&sweep, device)?;
    let (cpu, dev) = (sweep.scores(), on_device.scores(None)?);
    let max_relative_score_difference = cpu
        .layers
        .iter()
        .flatten()
        .zip(dev.layers.iter().flatten())
        .map(|(x, y)| (x - y).abs() / x.abs().max(1e-30))
        .fold(0.0, f64::max);
    let same_selection = cpu.select(15)? == dev.select(15)?;
    let idx = Bootstrap::new(images.n, 500, 0)?.resample(0);
    let cpu_ms = median_ms(|| Ok(sweep.subset(&idx).scores().select(15).map(drop)?))?;
    let device_ms = median_ms(|| Ok(on_device.scores(Some(&idx))?.select(15).map(drop)?))?;
    Ok(SweepCheck {
        task: task.name,
        pairs: images.n,
        max_relative_score_difference,
        same_selection,
        cpu_ms,
        device_ms,
    })
}

pub fn run(args: GpuCheckArgs) -> anyhow::Result<()> {
    let mnist = args.data.load()?;
    let device = args.device.open()?;
    // Weights with structure: 2 000 BIMT steps on the CPU, no relocation yet.
    let cfg = TrainConfig::new(Regime::Bimt).steps(2_000).swap_every(1_000_000);
    let base = Trainer::new(cfg)?.run(&mnist.train, None, &mut |_| {})?;
    let cost = ConnectionCost::swap(&base.layout);
    let relocator = Relocator::new(&cost);
    let mut kernel = Vec::new();
    let mut via_kernel = base.model.clone();
    let mut kernel_swaps = Vec::new();
    for n in 1..=via_kernel.layers.len() {
        let t = Instant::now();
        let c = position_costs(&via_kernel, &base.layout, n, &device)?;
        let kernel_ms = t.elapsed().as_secs_f64() * 1e3;
        let reference = relocator.position_costs(&via_kernel, n);
        let worst = c.iter().zip(&reference).map(|(x, y)| (x - y).abs() / y.abs().max(1e-30)).fold(0.0, f64::max);
        kernel.push(KernelCheck { layer: n, max_relative_difference_vs_cpu: worst, kernel_ms });
        let ranking = importance_ranking(&via_kernel, n);
        for (j, k) in greedy_swaps(&c, &ranking, TOP_POSITIONS).0 {
            apply_swap(&mut via_kernel, n, j, k);
            kernel_swaps.push((n, j, k));
        }
    }
    let mut naive = base.model.clone();
    let naive_swaps: Vec<_> = relocate_naive(&mut naive, &cost, TOP_POSITIONS)
        .swaps
        .iter()
        .map(|s| (s.layer, s.position, s.target))
        .collect();
    let kernel_swaps_match_naive = naive_swaps == kernel_swaps && naive == via_kernel;
    println!("kernel: {} swaps, same as the naive relocation: {kernel_swaps_match_naive}", kernel_swaps.len());
    for k in &kernel {
        println!(
            "  layer {}: C differs from the CPU's by {:.2e} (relative), {:.3} ms",
            k.layer, k.max_relative_difference_vs_cpu, k.kernel_ms
        );
    }

    let sweep = check_sweep(&base.model, &mnist, &device)?;
    println!(
        "patching sweep ({}, {} pairs): scores differ by {:.2e} (relative), same circuit: {}; one 500-pair discovery {:.2} ms on the CPU, {:.2} ms on {}",
        sweep.task, sweep.pairs, sweep.max_relative_score_difference, sweep.same_selection, sweep.cpu_ms, sweep.device_ms, args.device
    );

    let mut training = Vec::new();
    let x = &mnist.test.images[..1000 * mnist.test.pixels()];
    for regime in [Regime::Vanilla, Regime::L1, Regime::Bimt] {
        training.push(train_check(regime, args.steps as usize, &mnist, &device, x)?);
    }
    let report = Report {
        device: args.device.to_string(),
        kernel,
        kernel_swaps_match_naive,
        kernel_swaps: kernel_swaps.len(),
        sweep,
        training,
    };
    let json = serde_json::to_vec_pretty(&report)?;
    modcirc_store::atomic::write_atomic(&args.out.join("gpu-check.json"), &json).context("writing gpu-check.json")?;
    Ok(())
}

/// One regime trained `steps` steps on the CPU and the GPU, compared.
fn train_check(regime: Regime, steps: usize, mnist: &Mnist, device: &Device, x: &[f32]) -> anyhow::Result<TrainCheck> {
    let cfg = TrainConfig::new(regime).steps(steps).history_every(steps);
    let t = Instant::now();
    let cpu = Trainer::new(cfg.clone())?.run(&mnist.train, None, &mut |_| {})?;
    let cpu_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let gpu = CandleTrainer::new(cfg.clone(), device.clone())?.run(&mnist.train, None, &mut |_| {})?;
    let gpu_s = t.elapsed().as_secs_f64();
    let mut nudged = Trainer::new(cfg.clone())?.model().clone();
    nudged.layers[1].weight[0] = f32::from_bits(nudged.layers[1].weight[0].to_bits() + 1);
    let perturbed = Trainer::new(cfg.clone())?.with_model(nudged)?.run(&mnist.train, None, &mut |_| {})?;
    let max_logit_difference = max_difference(&cpu.model.forward(x, 1000), &gpu.model.forward(x, 1000));
    let cpu_vs_perturbed_cpu_logit_difference =
        max_difference(&cpu.model.forward(x, 1000), &perturbed.model.forward(x, 1000));
    let max_weight_difference = cpu
        .model
        .layers
        .iter()
        .zip(&gpu.model.layers)
        .flat_map(|(p, q)| p.weight.iter().zip(&q.weight))
        .map(|(p, q)| (p - q).abs() as f64)
        .fold(0.0, f64::max);
    let check = TrainCheck {
        regime,
        steps,
        same_swaps: cpu.model.out_perm == gpu.model.out_perm && cpu.timing.swaps == gpu.timing.swaps,
        cpu_swaps: cpu.timing.swaps,
        gpu_swaps: gpu.timing.swaps,
        max_logit_difference,
        max_weight_difference,
        cpu_vs_perturbed_cpu_logit_difference,
        cpu_s,
        gpu_s,
    };
    println!(
        "training {regime} {} steps: swaps cpu {} gpu {} (same: {}), max |logit difference| {:.2e} (CPU vs CPU from a start one ulp away: {:.2e}), max |weight difference| {:.2e}",
        steps, check.cpu_swaps, check.gpu_swaps, check.same_swaps, max_logit_difference, cpu_vs_perturbed_cpu_logit_difference, max_weight_difference
    );
    Ok(check)
}
