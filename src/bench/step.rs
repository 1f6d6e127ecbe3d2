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
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;

use super::{synthetic_noised_batch, upper_median};
use crate::device::{BackendTask, DeviceChoice, EngineBackend};
use crate::diffusion::loss::NoisedBatch;
use crate::kernel_runtime::{self, KernelActivity};
use crate::kernels::KlBackend;
use crate::model::init::random_init;
use crate::model::{loss_and_gradients, LoraSettings, MaskedDiffusionLm, ModelConfig};
use crate::train::clip::clip_global_norm;
use crate::unlearn::methods::{LossParts, Method, MethodParams, StepBatches, StepContext};

/// Model shapes of `mdu bench-step` (and `scripts/bench_step.py --preset`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPreset {
    /// The 1B shape: d 2048, 16 layers, 16 heads, MLP 5504, vocabulary 126,464.
    #[value(name = "1b")]
    OneB,
    /// LLaDA-8B's shape: d 4096, 32 layers, 32 heads, MLP 12,288, vocabulary 126,464.
    #[value(name = "8b")]
    EightB,
    /// A shape for tests and kernel-cache checks: d 64, 2 layers, 4 heads, MLP 128, vocabulary 512.
    Tiny,
    /// A CPU-sized shape with the real vocabulary (the KL and the LM head stay as wide):
    /// d 256, 2 layers, 4 heads, MLP 688, vocabulary 126,464.
    Small,
}

impl StepPreset {
    pub fn config(self) -> ModelConfig {
        let mut c = match self {
            StepPreset::OneB => ModelConfig::llada_shape(2048, 16, 16, 5504, 126_464),
            StepPreset::EightB => ModelConfig::llada_shape(4096, 32, 32, 12_288, 126_464),
            StepPreset::Tiny => ModelConfig::llada_shape(64, 2, 4, 128, 512),
            StepPreset::Small => ModelConfig::llada_shape(256, 2, 4, 688, 126_464),
        };
        c.rope_theta = 500_000.0; // LLaDA-8B's
        c
    }

    pub fn name(self) -> &'static str {
        match self {
            StepPreset::OneB => "1b",
            StepPreset::EightB => "8b",
            StepPreset::Tiny => "tiny",
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
    /// Train LoRA adapters of this rank (all seven projections, α = 2·rank) instead of every weight.
    #[arg(long)]
    pub lora_rank: Option<usize>,
    /// A model shape instead of the preset's: d layers heads mlp vocab.
    #[arg(long, num_args = 5, value_names = ["D", "LAYERS", "HEADS", "MLP", "VOCAB"])]
    pub shape: Option<Vec<usize>>,
    /// Rows of each of the forget and retain batches.
    #[arg(long, default_value_t = STEP_ROWS)]
    pub rows: usize,
    /// Tokens per row (the first quarter is the question).
    #[arg(long, default_value_t = STEP_WIDTH)]
    pub width: usize,
    /// Per-block activation checkpointing (`model::checkpointing`): only each block's input is
    /// kept, and the block is recomputed in the backward pass.
    #[arg(long)]
    pub checkpointing: bool,
    /// What AdamW keeps its moments in (`train::moments`).
    #[arg(long, value_enum, default_value_t = crate::train::MomentPrecision::F32)]
    pub moments: crate::train::MomentPrecision,
}

impl BenchStepArgs {
    pub fn config(&self) -> ModelConfig {
        match &self.shape {
            Some(s) => {
                let mut c = ModelConfig::llada_shape(s[0], s[1], s[2], s[3], s[4]);
                c.rope_theta = 500_000.0;
                c
            }
            None => self.preset.config(),
        }
    }

    pub fn lora(&self) -> Option<LoraSettings> {
        self.lora_rank.map(|rank| LoraSettings {
            rank,
            alpha: 2.0 * rank as f64,
            ..LoraSettings::default()
        })
    }
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
    /// The first step alone (warm-up step 0): it waits on every kernel compile and autotune run.
    pub first_step_ms: f64,
    /// From the process's start (`kernel_runtime::started`) to the end of the first step: device
    /// start-up, random weights, then the first step.
    pub first_step_since_start_s: f64,
    /// Kernels compiled and autotune runs during the first step, and during the timed steps (the
    /// steady state should need none).
    pub first_step_kernels: KernelActivity,
    pub timed_steps_kernels: KernelActivity,
    /// The process's peak resident host memory (Linux `VmHWM`), MiB.
    pub peak_host_rss_mib: Option<f64>,
    /// LoRA rank (0: every weight trains).
    pub lora_rank: usize,
    pub rows: usize,
    pub width: usize,
    /// The memory plan's estimate of the step's peak (`unlearn::memory_plan`), MiB, and its parts.
    pub plan_mib: f64,
    pub plan: String,
}

/// Two fixed synthetic batches of `rows × width` tokens, the first quarter of every row the
/// question (forget from ids seed 1 and noise seed 2, retain from 3 and 4).
pub fn step_batches(config: &ModelConfig, rows: usize, width: usize) -> (NoisedBatch, NoisedBatch) {
    let shape = [rows, width, width / 4];
    (
        synthetic_noised_batch(config, shape, 1, 2),
        synthetic_noised_batch(config, shape, 3, 4),
    )
}

/// The loss of one MDU step as `mdu bench-step` and `mdu selftest` take it: MDU's forget KL on
/// `forget` (with the anchor pass on the frozen `reference`) plus α × the retain NLL on `retain`.
pub struct MduStepLoss<'a, B: AutodiffBackend> {
    pub reference: &'a MaskedDiffusionLm<B::InnerBackend>,
    pub forget: &'a NoisedBatch,
    pub retain: &'a NoisedBatch,
    pub params: MethodParams,
    pub mask_id: u32,
    pub device: &'a B::Device,
}

impl<B: AutodiffBackend + KlBackend> MduStepLoss<'_, B> {
    pub fn of(&self, model: &MaskedDiffusionLm<B>) -> LossParts<B> {
        let ctx = StepContext {
            model,
            reference: Some(self.reference),
            device: self.device,
            mask_id: self.mask_id,
            special_ids: &[],
        };
        let batches = StepBatches {
            forget: self.forget,
            retain: Some(self.retain),
        };
        Method::Mdu.loss(&ctx, &batches, &self.params)
    }
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
    let config = args.config();
    let mask_id = config.mask_token_id.expect("llada_shape sets the mask id");
    let (forget, retain) = step_batches(&config, args.rows, args.width);
    let mut model: MaskedDiffusionLm<B> = random_init(&config, device, 0, 0.02);
    let lora = args.lora();
    if let Some(lora) = &lora {
        model = model.with_adapters(crate::model::Adapters::init(lora, &config, 0, device));
    }
    // The frozen starting model θ₀ (with LoRA the base, adapters off): the optimizer's updates
    // give `model` new tensors, so these stay the starting point.
    let reference = model.valid().without_adapters();
    use crate::model::precision::{storage_bytes, stores_bf16};
    let plan =
        crate::unlearn::memory_plan::MemoryPlan::of(&crate::unlearn::memory_plan::PlanInputs {
            config: &config,
            storage_bytes: storage_bytes::<B>(device),
            moment_bytes: args.moments.bytes_per_parameter(stores_bf16::<B>(device)),
            lora: lora.as_ref(),
            uses_reference: true,
            rows: 2 * args.rows,
            pass_rows: args.rows,
            checkpointing: args.checkpointing,
            width: args.width,
            masked: forget.masked.len() + retain.masked.len(),
            on_cpu: bench.device_name == "cpu",
        });
    let mut optim = crate::train::adamw(STEP_WEIGHT_DECAY).for_run(args.moments);
    let loss = MduStepLoss {
        reference: &reference,
        forget: &forget,
        retain: &retain,
        params: MethodParams {
            tau: STEP_TAU,
            eta: STEP_ETA,
            ..MethodParams::default()
        },
        mask_id,
        device,
    };
    let sync = || {
        if let Err(e) = B::sync(device) {
            panic!("device sync failed: {e:?}");
        }
    };
    let (mut forget_first, mut retain_first) = (f64::NAN, f64::NAN);
    let mut times = Vec::with_capacity(args.iters);
    let (mut first_step_ms, mut first_step_since_start_s) = (f64::NAN, f64::NAN);
    let mut first_step_kernels = KernelActivity::default();
    let mut timed_start = kernel_runtime::snapshot();
    for i in 0..args.warmup + args.iters {
        sync();
        if i == args.warmup {
            timed_start = kernel_runtime::snapshot();
        }
        let before = kernel_runtime::snapshot();
        let start = Instant::now();
        let (_, parts, mut grads) = loss_and_gradients(&model, args.checkpointing, |m| {
            let parts = loss.of(m);
            (parts.total.clone(), parts)
        });
        if i == 0 {
            (forget_first, retain_first) = (parts.value("forget"), parts.value("retain"));
        }
        clip_global_norm::<B, _>(&model, &mut grads, 1.0);
        model = optim.step(STEP_LR, model, grads);
        sync();
        if i == 0 {
            first_step_ms = start.elapsed().as_secs_f64() * 1e3;
            first_step_since_start_s = kernel_runtime::started().elapsed().as_secs_f64();
            first_step_kernels = kernel_runtime::snapshot().since(before);
        }
        // On stderr as it goes, so a run cut short by a time limit still says how far it got.
        let k = kernel_runtime::snapshot().since(before);
        eprintln!(
            "step {i}: {:.1} ms ({} kernels compiled, {} tuned)",
            start.elapsed().as_secs_f64() * 1e3,
            k.compiled,
            k.tuned
        );
        if i >= args.warmup {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let timed_steps_kernels = kernel_runtime::snapshot().since(timed_start);
    let median = upper_median(&times);
    let tokens = 2 * args.rows * args.width;
    StepReport {
        implementation: "burn".into(),
        bench: "mdu_step".into(),
        preset: match &args.shape {
            Some(s) => format!("{s:?}"),
            None => args.preset.name().into(),
        },
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
        first_step_ms,
        first_step_since_start_s,
        first_step_kernels,
        timed_steps_kernels,
        peak_host_rss_mib: peak_rss_mib(),
        lora_rank: args.lora_rank.unwrap_or(0),
        rows: args.rows,
        width: args.width,
        plan_mib: plan.total() as f64 / (1u64 << 20) as f64,
        plan: plan.describe(),
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
