//! One MDU unlearning step (`mdu bench-step`), the step `mdu unlearn --method mdu` takes, on a
//! preset LLaDA shape with random weights. The PyTorch twin is `scripts/bench_step.py`;
//! `scripts/gpu-check.sh` runs both on a GPU machine and reads their peak GPU memory the same way
//! (`scripts/nvml_peak.py`).
//!
//! The step: forget batch and retain batch, each `rows × width` tokens, the first `prompt`
//! positions of every row question and the rest answer (maskable), noised once (LLaDA 1/t
//! weighting) and reused every step. Forget term: MDU's KL at the masked answer positions towards
//! `τ·(z_u − η·(z_c − z_u))`, where z_u comes from the frozen starting model's anchor pass (every
//! non-answer position masked; τ = 0.5, η = 0.1, forward KL). Retain term: the masked-diffusion
//! NLL, α = 1. Then backward, global-norm clipping to 1.0, AdamW (lr 1e-5, weight decay 0.01,
//! moments in f32) and a device sync before the clock stops. Tokens per step count the trained
//! tokens: forget + retain, `2 · rows · width` (the anchor pass is extra work on top).

use std::time::Instant;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use serde::Serialize;

use super::upper_median;
use crate::device::{BackendTask, DeviceChoice, EngineBackend};
use crate::diffusion::batch::SftBatch;
use crate::diffusion::loss::{LossWeighting, NoisedBatch};
use crate::kernels::KlBackend;
use crate::model::init::random_init;
use crate::model::{MaskedDiffusionLm, ModelConfig};
use crate::rng::SplitMix64;
use crate::train::clip::clip_global_norm;
use crate::unlearn::methods::{Method, MethodParams, StepBatches, StepContext};

/// Model shapes of `mdu bench-step` (and `scripts/bench_step.py --preset`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPreset {
    /// The 1B shape: d 2048, 16 layers, 16 heads, MLP 5504, vocabulary 126,464.
    #[value(name = "1b")]
    OneB,
    /// A CPU-sized shape with the real vocabulary (the KL and the LM head stay as wide):
    /// d 256, 2 layers, 4 heads, MLP 688, vocabulary 126,464.
    Small,
}

impl StepPreset {
    pub fn config(self) -> ModelConfig {
        let mut c = match self {
            StepPreset::OneB => ModelConfig::llada_shape(2048, 16, 16, 5504, 126_464),
            StepPreset::Small => ModelConfig::llada_shape(256, 2, 4, 688, 126_464),
        };
        c.rope_theta = 500_000.0; // LLaDA-8B's
        c
    }

    pub fn name(self) -> &'static str {
        match self {
            StepPreset::OneB => "1b",
            StepPreset::Small => "small",
        }
    }
}

pub const STEP_ROWS: usize = 4;
pub const STEP_WIDTH: usize = 256;
pub const STEP_PROMPT: usize = 64;
pub const STEP_LR: f64 = 1e-5;
pub const STEP_WEIGHT_DECAY: f32 = 0.01;
pub const STEP_TAU: f64 = 0.5;
pub const STEP_ETA: f64 = 0.1;

/// Arguments of `mdu bench-step`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchStepArgs {
    #[arg(long, value_enum, default_value = "1b")]
    pub preset: StepPreset,
    #[arg(long, default_value = "auto", help = crate::device::device_help())]
    pub device: String,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
}

#[derive(Serialize)]
pub struct StepReport {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub bench: String,
    pub preset: String,
    pub device: String,
    /// Storage of weights and activations (`f32`, `bf16`, `f16`).
    pub precision: String,
    pub params: u64,
    pub tokens_per_step: usize,
    pub masked_forget: usize,
    pub masked_retain: usize,
    pub step_ms_median: f64,
    pub tokens_per_s: f64,
    pub iters: usize,
    /// Loss parts of the first step (forget KL, retain NLL): finite, and a sanity check.
    pub forget_first: f64,
    pub retain_first: f64,
    pub step_ms: Vec<f64>,
    /// The process's peak resident host memory (Linux `VmHWM`), MiB.
    pub peak_host_rss_mib: Option<f64>,
}

/// Two fixed synthetic batches (forget from seed 1, retain from seed 3), ids uniform in
/// `0..vocab-2` (never the mask or EOS id), noised once with seeds 2 and 4.
pub fn step_batches(config: &ModelConfig) -> (NoisedBatch, NoisedBatch) {
    let mask = config.mask_token_id.expect("llada_shape sets the mask id");
    let batch = |seed: u64| {
        let mut rng = SplitMix64(seed);
        let n = STEP_ROWS * STEP_WIDTH;
        SftBatch {
            ids: (0..n)
                .map(|_| (rng.next_u64() % (config.vocab_size as u64 - 2)) as u32)
                .collect(),
            rows: STEP_ROWS,
            width: STEP_WIDTH,
            maskable: (0..n).map(|i| i % STEP_WIDTH >= STEP_PROMPT).collect(),
        }
    };
    let noised = |ids_seed: u64, noise_seed: u64| {
        NoisedBatch::sample(
            &batch(ids_seed),
            &mut SplitMix64(noise_seed),
            mask,
            LossWeighting::InverseTime,
        )
    };
    (noised(1, 2), noised(3, 4))
}

struct StepBench {
    args: BenchStepArgs,
    device_name: String,
    precision: String,
}

impl BackendTask for StepBench {
    type Output = StepReport;
    fn run<B: EngineBackend>(self, device: &B::Device) -> StepReport {
        step_bench::<Autodiff<B>>(self, device)
    }
}

fn step_bench<B: AutodiffBackend + KlBackend>(bench: StepBench, device: &B::Device) -> StepReport {
    let args = &bench.args;
    let config = args.preset.config();
    let mask_id = config.mask_token_id.expect("llada_shape sets the mask id");
    let (forget, retain) = step_batches(&config);
    let mut model: MaskedDiffusionLm<B> = random_init(&config, device, 0, 0.02);
    // The frozen starting model θ₀: the same tensors, outside the autodiff graph; the optimizer's
    // updates give `model` new tensors, so this stays the starting point.
    let reference = model.valid();
    let mut optim = crate::train::adamw(STEP_WEIGHT_DECAY).init::<B, MaskedDiffusionLm<B>>();
    let params = MethodParams {
        tau: STEP_TAU,
        eta: STEP_ETA,
        ..MethodParams::default()
    };
    let sync = || {
        if let Err(e) = B::sync(device) {
            panic!("device sync failed: {e:?}");
        }
    };
    let (mut forget_first, mut retain_first) = (f64::NAN, f64::NAN);
    let mut times = Vec::with_capacity(args.iters);
    for i in 0..args.warmup + args.iters {
        sync();
        let start = Instant::now();
        let ctx = StepContext {
            model: &model,
            reference: Some(&reference),
            device,
            mask_id,
            special_ids: &[],
        };
        let batches = StepBatches {
            forget: &forget,
            retain: Some(&retain),
        };
        let parts = Method::Mdu.loss(&ctx, &batches, &params);
        if i == 0 {
            let value = |name: &str| {
                parts
                    .parts
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(f64::NAN, |(_, t)| t.clone().into_scalar().elem::<f64>())
            };
            (forget_first, retain_first) = (value("forget"), value("retain"));
        }
        let mut grads = GradientsParams::from_grads(parts.total.backward(), &model);
        clip_global_norm::<B, _>(&model, &mut grads, 1.0);
        model = optim.step(STEP_LR, model, grads);
        sync();
        if i >= args.warmup {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let median = upper_median(&times);
    let tokens = 2 * STEP_ROWS * STEP_WIDTH;
    StepReport {
        implementation: "burn".into(),
        bench: "mdu_step".into(),
        preset: args.preset.name().into(),
        device: bench.device_name,
        precision: bench.precision,
        params: config.num_parameters(),
        tokens_per_step: tokens,
        masked_forget: forget.masked.len(),
        masked_retain: retain.masked.len(),
        step_ms_median: median,
        tokens_per_s: tokens as f64 / (median / 1e3),
        iters: times.len(),
        forget_first,
        retain_first,
        step_ms: times,
        peak_host_rss_mib: peak_rss_mib(),
    }
}

/// `VmHWM` from /proc/self/status (Linux), MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the step benchmark and returns its report.
pub fn run_step_bench(args: BenchStepArgs) -> anyhow::Result<StepReport> {
    if args.iters == 0 {
        anyhow::bail!("--iters must be at least 1");
    }
    let device = DeviceChoice::parse(&args.device).map_err(anyhow::Error::msg)?;
    let precision = device.effective_precision().name().to_string();
    Ok(device.run(StepBench {
        device_name: device.to_string(),
        precision,
        args,
    }))
}

/// `mdu bench-step`: warm-up steps, then `iters` timed steps; one JSON line on stdout.
pub fn bench_step(args: BenchStepArgs) -> anyhow::Result<()> {
    let report = run_step_bench(args)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
