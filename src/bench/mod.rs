//! Forward-pass throughput on preset LLaDA shapes with random weights. The PyTorch twin is
//! `scripts/bench_forward.py`; `scripts/bench_forward.sh` runs both and prints the ratio.
//!
//! Training-step throughput (`mdu bench-train`) on the demo model's shape: the step of
//! `mdu finetune` on a fixed synthetic batch. The PyTorch twin is `scripts/bench_train.py`;
//! `scripts/bench_train.sh` runs both and prints the ratios.
//!
//! The MDU masked KL (`mdu bench-kl`): the WGSL kernel against the composite tensor ops on the
//! same device, forward and forward + backward; `scripts/bench_kl.sh` runs it.
//!
//! One MDU unlearning step on a 1B-shaped LLaDA (`mdu bench-step`): [`step`].

pub mod step;

use std::time::Instant;

use burn::backend::Autodiff;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use serde::Serialize;

use crate::device::{BackendTask, DeviceChoice, EngineBackend};
use crate::diffusion::batch::SftBatch;
use crate::diffusion::loss::{mdlm_loss, LossWeighting, NoisedBatch};
use crate::model::init::random_init;
use crate::model::{MaskedDiffusionLm, ModelConfig};
use crate::rng::SplitMix64;
use crate::train::clip::clip_global_norm;

#[derive(Clone, Copy, Debug, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchPreset {
    /// d 64, 2 layers, 4 heads, MLP 128, vocab 256; batch 8 × 64 tokens.
    Tiny,
    /// d 768, 10 layers, 12 heads, MLP 2048, vocab 16384 (~96M parameters); batch 4 × 128 tokens.
    #[value(name = "100m")]
    #[serde(rename = "100m")]
    M100,
}

impl BenchPreset {
    /// (config, batch, length)
    pub fn shape(self) -> (ModelConfig, usize, usize) {
        let (d, layers, heads, mlp, vocab, batch, len) = match self {
            BenchPreset::Tiny => (64, 2, 4, 128, 256, 8, 64),
            BenchPreset::M100 => (768, 10, 12, 2048, 16384, 4, 128),
        };
        let config = ModelConfig {
            rope_theta: 500000.0,
            max_position_embeddings: 4096,
            ..ModelConfig::llada_shape(d, layers, heads, mlp, vocab)
        };
        (config, batch, len)
    }
}

pub struct ForwardBench {
    pub preset: BenchPreset,
    pub warmup: usize,
    pub iters: usize,
    pub device_name: String,
}

#[derive(Serialize)]
pub struct BenchReport {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub config: BenchPreset,
    pub device: String,
    pub parameters: u64,
    pub batch: usize,
    pub length: usize,
    pub tokens_per_s_median: f64,
    pub iters: Vec<f64>,
}

impl BackendTask for ForwardBench {
    type Output = BenchReport;
    fn run<B: EngineBackend>(self, device: &B::Device) -> BenchReport {
        let (config, batch, len) = self.preset.shape();
        let model = random_init::<B>(&config, device, 0, 0.02);
        let mut rng = SplitMix64(1);
        let ids: Vec<i64> = (0..batch * len)
            .map(|_| (rng.next_u64() % config.vocab_size as u64) as i64)
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, len]), device);
        let mut times = Vec::new();
        for i in 0..self.warmup + self.iters {
            let start = Instant::now();
            let hidden = model.forward_hidden(ids.clone(), None);
            // Reading the logits back forces the (possibly asynchronous) device to finish.
            let _ = model.logits_all(hidden).into_data();
            if i >= self.warmup {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        let median = upper_median(&times);
        BenchReport {
            implementation: "burn".into(),
            config: self.preset,
            device: self.device_name,
            parameters: config.num_parameters(),
            batch,
            length: len,
            tokens_per_s_median: (batch * len) as f64 / median,
            iters: times,
        }
    }
}

/// Arguments of `mdu bench-train`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchTrainArgs {
    #[arg(long, default_value = "cpu", help = crate::device::device_help())]
    pub device: String,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
}

/// Demo-model shape of the training benchmark (what `mdu finetune --hidden 128 --layers 4 --heads 4
/// --mlp 512` trains on the demo world, whose tokenizer rounds up to 2048 ids).
pub fn train_bench_config() -> ModelConfig {
    ModelConfig::llada_shape(128, 4, 4, 512, 2048)
}

/// Rows × width of the synthetic SFT batch; positions `TRAIN_PROMPT..` of every row are answer.
pub const TRAIN_ROWS: usize = 32;
pub const TRAIN_WIDTH: usize = 72;
pub const TRAIN_PROMPT: usize = 26;
/// Seeds: weights (`random_init`), token ids, noise. `scripts/bench_train.py` draws the same
/// SplitMix64 streams, so both sides start from the same weights and the same noised batch.
pub const TRAIN_SEEDS: (u64, u64, u64) = (0, 1, 2);
pub const TRAIN_LR: f64 = 1e-3;

/// The fixed synthetic batch of `mdu bench-train`.
pub fn train_bench_batch(config: &ModelConfig) -> SftBatch {
    synthetic_sft_batch(
        config.vocab_size,
        [TRAIN_ROWS, TRAIN_WIDTH, TRAIN_PROMPT],
        TRAIN_SEEDS.1,
    )
}

/// A synthetic SFT batch of `[rows, width, prompt]`: ids uniform in `0..vocab-2` (never the mask
/// or EOS id) drawn in order from SplitMix64(`seed`), positions `prompt..` of every row answer.
/// The PyTorch twins (`scripts/bench_train.py`, `scripts/bench_step.py`) draw the same.
pub fn synthetic_sft_batch(vocab: usize, [rows, width, prompt]: [usize; 3], seed: u64) -> SftBatch {
    let mut rng = SplitMix64(seed);
    let n = rows * width;
    SftBatch {
        ids: (0..n)
            .map(|_| (rng.next_u64() % (vocab as u64 - 2)) as u32)
            .collect(),
        rows,
        width,
        maskable: (0..n).map(|i| i % width >= prompt).collect(),
    }
}

/// [`synthetic_sft_batch`] noised once (LLaDA 1/t weighting) with SplitMix64(`noise_seed`).
pub fn synthetic_noised_batch(
    config: &ModelConfig,
    shape: [usize; 3],
    ids_seed: u64,
    noise_seed: u64,
) -> NoisedBatch {
    NoisedBatch::sample(
        &synthetic_sft_batch(config.vocab_size, shape, ids_seed),
        &mut SplitMix64(noise_seed),
        config.mask_token_id.expect("a mask id"),
        LossWeighting::InverseTime,
    )
}

struct TrainBench {
    warmup: usize,
    iters: usize,
    device_name: String,
}

#[derive(Serialize)]
pub struct TrainReport {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub bench: String,
    pub device: String,
    pub params: u64,
    pub tokens_per_step: usize,
    pub masked_per_step: usize,
    pub step_ms_median: f64,
    pub tokens_per_s: f64,
    pub iters: usize,
    /// Loss of the first step (same weights and batch as the PyTorch twin: a cross-check).
    pub loss_first: f64,
    pub step_ms: Vec<f64>,
    /// Median of each phase of the timed steps (they need not add up to `step_ms_median`).
    pub phase_ms_median: PhaseMs,
}

/// Where a step goes: loss forward (with the loss read), backward (then a device sync), global-norm
/// clipping (reads the norm), AdamW (then a device sync).
#[derive(Serialize)]
pub struct PhaseMs {
    pub forward: f64,
    pub backward: f64,
    pub clip: f64,
    pub adamw: f64,
}

impl BackendTask for TrainBench {
    type Output = TrainReport;
    fn run<B: EngineBackend>(self, device: &B::Device) -> TrainReport {
        train_bench::<Autodiff<B>>(self, device)
    }
}

/// One step as `mdu finetune` takes it (one micro-batch): MDLM loss forward (+ reading the loss),
/// backward, global-norm clipping to 1.0 (reads the norm), AdamW; then a device sync, so an
/// asynchronous backend has finished the optimiser update before the clock stops. One extra sync
/// after backward (a no-op on ndarray) lets the phases be timed apart.
fn train_bench<B: AutodiffBackend>(args: TrainBench, device: &B::Device) -> TrainReport {
    let config = train_bench_config();
    let mask = config.mask_token_id.expect("set above");
    let batch = train_bench_batch(&config);
    let noised = NoisedBatch::sample(
        &batch,
        &mut SplitMix64(TRAIN_SEEDS.2),
        mask,
        LossWeighting::InverseTime,
    );
    let mut model: MaskedDiffusionLm<B> = random_init(&config, device, TRAIN_SEEDS.0, 0.02);
    let mut optim = crate::train::adamw(0.0).init::<B, MaskedDiffusionLm<B>>();
    let mut times = Vec::with_capacity(args.iters);
    let mut loss_first = f64::NAN;
    let mut phases: [Vec<f64>; 4] = Default::default();
    for i in 0..args.warmup + args.iters {
        let sync = || {
            if let Err(e) = B::sync(device) {
                panic!("device sync failed: {e:?}");
            }
        };
        let start = Instant::now();
        let loss = mdlm_loss(&model, &noised, device);
        let value = loss.clone().into_scalar().elem::<f64>();
        let t_forward = start.elapsed();
        let backward = loss.backward();
        sync();
        let t_backward = start.elapsed();
        let mut grads = GradientsParams::from_grads(backward, &model);
        clip_global_norm::<B, _>(&model, &mut grads, 1.0);
        let t_clip = start.elapsed();
        model = optim.step(TRAIN_LR, model, grads);
        sync();
        let t_step = start.elapsed();
        if i == 0 {
            loss_first = value;
        }
        if i >= args.warmup {
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            times.push(ms(t_step));
            phases[0].push(ms(t_forward));
            phases[1].push(ms(t_backward - t_forward));
            phases[2].push(ms(t_clip - t_backward));
            phases[3].push(ms(t_step - t_clip));
        }
    }
    let median = upper_median;
    let phase_ms_median = PhaseMs {
        forward: median(&phases[0]),
        backward: median(&phases[1]),
        clip: median(&phases[2]),
        adamw: median(&phases[3]),
    };
    let median = median(&times);
    let tokens = batch.rows * batch.width;
    TrainReport {
        implementation: "burn".into(),
        bench: "train".into(),
        device: args.device_name,
        params: config.num_parameters(),
        tokens_per_step: tokens,
        masked_per_step: noised.masked.len(),
        step_ms_median: median,
        tokens_per_s: tokens as f64 / (median / 1e3),
        iters: times.len(),
        loss_first,
        step_ms: times,
        phase_ms_median,
    }
}

/// `mdu bench-train`: warm-up steps, then `iters` timed steps; one JSON line on stdout.
pub fn bench_train(args: BenchTrainArgs) -> anyhow::Result<()> {
    if args.iters == 0 {
        anyhow::bail!("--iters must be at least 1");
    }
    let choice = DeviceChoice::parse(&args.device).map_err(anyhow::Error::msg)?;
    let report = choice.run(TrainBench {
        warmup: args.warmup,
        iters: args.iters,
        device_name: choice.to_string(),
    });
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// `mdu bench-kl`: the MDU masked KL, kernel against composite.

/// Arguments of `mdu bench-kl`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchKlArgs {
    #[arg(long, default_value = "wgpu:cpu", help = crate::device::device_help())]
    pub device: String,
    /// Shapes `NxV` (masked positions × vocabulary), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "64x32000,512x32000,64x126464"
    )]
    pub shapes: Vec<String>,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
}

/// One shape of `mdu bench-kl`: medians over the timed iterations, the two implementations
/// interleaved in each iteration.
#[derive(Serialize)]
pub struct KlReport {
    pub bench: String,
    pub device: String,
    /// Whether this backend has the kernel (otherwise both columns run the composite).
    pub kernel_available: bool,
    pub rows: usize,
    pub vocab: usize,
    /// Bytes a single pass must move, counted as: forward reads z_c and z_t (2·N·V·4); backward
    /// reads them again and writes ∂L/∂z_c (3·N·V·4); the per-row outputs are ignored. The same
    /// count divides both implementations' times (for the composite it is an effective rate).
    pub forward_bytes: u64,
    pub forward_backward_bytes: u64,
    pub kernel_forward_ms: f64,
    pub composite_forward_ms: f64,
    pub kernel_forward_backward_ms: f64,
    pub composite_forward_backward_ms: f64,
    pub kernel_forward_gb_s: f64,
    pub composite_forward_gb_s: f64,
    pub kernel_forward_backward_gb_s: f64,
    pub composite_forward_backward_gb_s: f64,
    /// composite time / kernel time (> 1: the kernel is faster).
    pub speedup_forward: f64,
    pub speedup_forward_backward: f64,
    /// max |KL_kernel − KL_composite| / (1 + |KL_composite|) on the benchmark's inputs.
    pub kl_max_rel_diff: f64,
    pub iters: usize,
}

struct KlBench {
    rows: usize,
    vocab: usize,
    warmup: usize,
    iters: usize,
    device_name: String,
}

impl BackendTask for KlBench {
    type Output = KlReport;
    fn run<B: EngineBackend>(self, device: &B::Device) -> KlReport {
        use crate::unlearn::methods::mdu::masked_kl;
        use crate::unlearn::{KlDirection, KlImpl};
        let (n, v) = (self.rows, self.vocab);
        let mut rng = SplitMix64(11);
        let mut normal =
            |scale: f32| -> Vec<f32> { (0..n * v).map(|_| rng.normal() * scale).collect() };
        let conditional = Tensor::<B, 2>::from_data(TensorData::new(normal(3.0), [n, v]), device);
        let target = Tensor::<B, 2>::from_data(TensorData::new(normal(1.0), [n, v]), device);
        let sync = || {
            if let Err(e) = B::sync(device) {
                panic!("device sync failed: {e:?}");
            }
        };
        let impls = [KlImpl::Auto, KlImpl::Composite];
        let forward = |imp: KlImpl| {
            let start = Instant::now();
            let kl = masked_kl(
                conditional.clone(),
                target.clone(),
                KlDirection::Forward,
                imp,
            );
            sync();
            let ms = start.elapsed().as_secs_f64() * 1e3;
            (ms, kl)
        };
        let forward_backward = |imp: KlImpl| {
            let c = Tensor::<Autodiff<B>, 2>::from_inner(conditional.clone()).require_grad();
            let t = Tensor::<Autodiff<B>, 2>::from_inner(target.clone());
            sync();
            let start = Instant::now();
            let kl = masked_kl(c.clone(), t, KlDirection::Forward, imp);
            let grads = kl.sum().backward();
            let g = c.grad(&grads);
            sync();
            let ms = start.elapsed().as_secs_f64() * 1e3;
            drop(g);
            ms
        };
        let mut times: [Vec<f64>; 4] = Default::default();
        let mut kl_max_rel_diff = 0.0f64;
        for i in 0..self.warmup + self.iters {
            let (fk, kl_k) = forward(impls[0]);
            let (fc, kl_c) = forward(impls[1]);
            let bk = forward_backward(impls[0]);
            let bc = forward_backward(impls[1]);
            if i == 0 {
                let k = kl_k
                    .into_data()
                    .convert::<f64>()
                    .to_vec::<f64>()
                    .unwrap_or_default();
                let c = kl_c
                    .into_data()
                    .convert::<f64>()
                    .to_vec::<f64>()
                    .unwrap_or_default();
                kl_max_rel_diff = k
                    .iter()
                    .zip(&c)
                    .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                    .fold(0.0, f64::max);
            }
            if i >= self.warmup {
                for (slot, t) in times.iter_mut().zip([fk, fc, bk, bc]) {
                    slot.push(t);
                }
            }
        }
        let [fk, fc, bk, bc] = times.map(|t| upper_median(&t));
        let elems = (n * v) as u64;
        let (fwd_bytes, fb_bytes) = (2 * 4 * elems, 5 * 4 * elems);
        let gb_s = |bytes: u64, ms: f64| bytes as f64 / (ms * 1e-3) / 1e9;
        KlReport {
            bench: "masked_kl".into(),
            device: self.device_name,
            kernel_available: B::KL_KERNEL,
            rows: n,
            vocab: v,
            forward_bytes: fwd_bytes,
            forward_backward_bytes: fb_bytes,
            kernel_forward_ms: fk,
            composite_forward_ms: fc,
            kernel_forward_backward_ms: bk,
            composite_forward_backward_ms: bc,
            kernel_forward_gb_s: gb_s(fwd_bytes, fk),
            composite_forward_gb_s: gb_s(fwd_bytes, fc),
            kernel_forward_backward_gb_s: gb_s(fb_bytes, bk),
            composite_forward_backward_gb_s: gb_s(fb_bytes, bc),
            speedup_forward: fc / fk,
            speedup_forward_backward: bc / bk,
            kl_max_rel_diff,
            iters: self.iters,
        }
    }
}

/// `mdu bench-kl`: per shape, warm-up iterations then `iters` timed ones, each running the kernel
/// and the composite (forward; forward + backward) with a device sync before the clock stops;
/// one JSON line per shape on stdout.
pub fn bench_kl(args: BenchKlArgs) -> anyhow::Result<()> {
    if args.iters == 0 {
        anyhow::bail!("--iters must be at least 1");
    }
    let choice = DeviceChoice::parse(&args.device).map_err(anyhow::Error::msg)?;
    for shape in &args.shapes {
        let parsed = shape.split_once('x').and_then(|(n, v)| {
            Some((
                n.trim().parse::<usize>().ok()?,
                v.trim().parse::<usize>().ok()?,
            ))
        });
        let Some((rows, vocab)) = parsed.filter(|&(n, v)| n > 0 && v > 0) else {
            anyhow::bail!("--shapes {shape:?}: expected NxV with N, V ≥ 1, e.g. 64x32000");
        };
        let report = choice.run(KlBench {
            rows,
            vocab,
            warmup: args.warmup,
            iters: args.iters,
            device_name: choice.to_string(),
        });
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// The upper median (`sorted[n / 2]`), as the PyTorch twins take it, so even counts compare alike;
/// NaN for no values.
pub fn upper_median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
