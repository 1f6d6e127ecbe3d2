//! `mdu selftest`: does a GPU device compute what the CPU computes? Each check runs the same
//! seeded work on the device and on the CPU (ndarray, f32) and compares on the host; then the MDU
//! step benchmark runs on each GPU. `--gpu` takes every CUDA device and every hardware wgpu
//! adapter (Vulkan over the NVIDIA driver on an NVIDIA machine) and fails when there is none.
//!
//! Checks (worst |device − reference| / (1 + |reference|), tolerance by the device's storage
//! precision, [`tolerance`]):
//! - `forward_llada`, `forward_dream_gqa`: logits of tiny random models (LLaDA MHA; Dream with
//!   GQA and q/k/v biases).
//! - `mdu_step`: one MDU step on a tiny model with the anchor pass (τ 0.5, η 0.1): forget KL,
//!   retain NLL and the global gradient norm, then the forget KL again after AdamW.
//! - `masked_kl`: the per-row KL and its gradient at the real vocabulary width (126,464) in f32,
//!   through whatever the backend runs (its kernel where it has one), against the host's f64
//!   reference (`kernels::reference`).

use anyhow::{bail, Result};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Tensor, TensorData};
use serde::Serialize;

use crate::bench::step::{run_step_bench, BenchStepArgs, MduStepLoss, StepPreset};
use crate::bench::synthetic_noised_batch;
use crate::device::{BackendTask, DeviceChoice, EngineBackend, Precision};
use crate::kernels::reference::{kl_reference, worst_relative};
use crate::kernels::{kl_divergence_rows, KlBackend};
use crate::model::config::Architecture;
use crate::model::init::random_init;
use crate::model::{MaskedDiffusionLm, ModelConfig};
use crate::rng::SplitMix64;
use crate::train::clip::clip_global_norm;
use crate::unlearn::methods::MethodParams;

#[derive(clap::Args, Debug, Clone)]
pub struct SelftestArgs {
    /// Check every GPU of this machine: each CUDA device and each hardware wgpu adapter. Fails
    /// when there is none (and says why CUDA is unavailable).
    #[arg(long)]
    pub gpu: bool,
    /// A device to check (repeatable), e.g. `wgpu:cpu`; added to the GPUs `--gpu` finds.
    #[arg(long = "device", help = crate::device::device_help())]
    pub devices: Vec<String>,
    /// The step benchmark after the checks, on each device checked (`none`: checks only).
    #[arg(long, default_value = "1b")]
    pub bench: BenchChoice,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchChoice {
    #[value(name = "1b")]
    OneB,
    Small,
    None,
}

/// One check on one device.
#[derive(Serialize, Clone, Debug)]
pub struct CheckResult {
    pub device: String,
    pub precision: String,
    pub check: String,
    pub max_rel_err: f64,
    pub tolerance: f64,
    pub pass: bool,
    /// What was compared, and which path ran (e.g. the KL kernel or the composite).
    pub detail: String,
}

/// Allowed worst relative error for a device whose weights and activations are stored in `p`.
/// f32: accumulation-order round-off over these sizes stays below 1e-5; 1e-4 leaves room. bf16
/// keeps 8 significant bits (unit round-off 2⁻⁸ ≈ 4e-3) and these checks chain about a dozen
/// rounded operations; f16 keeps 11 (2⁻¹¹ ≈ 5e-4).
pub fn tolerance(p: Precision) -> f64 {
    match p {
        Precision::F32 => 1e-4,
        Precision::F16 => 1e-2,
        Precision::Bf16 => 5e-2,
    }
}

/// The KL check runs in f32 on every device (the MDU forget term widens logits to f32 before its
/// KL), so it is held to the kernel tests' bound.
pub const KL_TOLERANCE: f64 = 1e-5;

/// The devices `--gpu` finds: CUDA devices, then hardware wgpu adapters.
pub fn gpu_devices() -> Vec<DeviceChoice> {
    crate::device::list_devices()
        .into_iter()
        .map(|(d, _)| d)
        .filter(|d| match d {
            DeviceChoice::Cpu => false,
            DeviceChoice::Wgpu(w) => *w != burn::backend::wgpu::WgpuDevice::Cpu,
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(_) => true,
        })
        .collect()
}

/// `mdu selftest`.
pub fn selftest(args: SelftestArgs) -> Result<()> {
    let mut devices = if args.gpu { gpu_devices() } else { Vec::new() };
    if args.gpu && devices.is_empty() {
        let cuda = crate::device::cuda_unavailable_reason().unwrap_or_default();
        bail!("no GPU found: CUDA is unavailable ({cuda}) and no hardware wgpu adapter is listed");
    }
    for text in &args.devices {
        let d = DeviceChoice::parse(text).map_err(anyhow::Error::msg)?;
        if !devices.contains(&d) {
            devices.push(d);
        }
    }
    if devices.is_empty() {
        bail!("nothing to check: pass --gpu or --device DEVICE");
    }
    let mut failed = 0;
    for device in &devices {
        // One device's backend failing (a panic inside cubecl) must not hide the others' results.
        let results =
            crate::kernel_runtime::catch(|| check_device(device)).unwrap_or_else(|panic| {
                vec![CheckResult {
                    device: device.to_string(),
                    precision: device.precision().name().into(),
                    check: "backend".into(),
                    max_rel_err: f64::INFINITY,
                    tolerance: 0.0,
                    pass: false,
                    detail: format!("the backend failed: {panic}"),
                }]
            });
        for result in results {
            eprintln!(
                "{} {:<18} {:<20} worst {:.2e} (tolerance {:.0e}; {}) {}",
                if result.pass { "ok  " } else { "FAIL" },
                result.check,
                result.device,
                result.max_rel_err,
                result.tolerance,
                result.precision,
                result.detail
            );
            failed += usize::from(!result.pass);
            println!("{}", serde_json::to_string(&result)?);
        }
    }
    let preset = match args.bench {
        BenchChoice::OneB => Some(StepPreset::OneB),
        BenchChoice::Small => Some(StepPreset::Small),
        BenchChoice::None => None,
    };
    if let Some(preset) = preset {
        for device in &devices {
            let args = BenchStepArgs {
                preset,
                device: device.to_string(),
                warmup: args.warmup,
                iters: args.iters,
                lora_rank: None,
                shape: None,
                rows: crate::bench::step::STEP_ROWS,
                width: crate::bench::step::STEP_WIDTH,
                checkpointing: false,
                moments: crate::train::MomentPrecision::F32,
            };
            let report = match crate::kernel_runtime::catch(|| run_step_bench(args)) {
                Ok(report) => report?,
                Err(panic) => {
                    failed += 1;
                    eprintln!("bench on {device}: the backend failed: {panic}");
                    continue;
                }
            };
            eprintln!(
                "bench {} on {}: {:.0} tokens/s (median step {:.1} ms, {})",
                report.preset,
                report.device,
                report.tokens_per_s,
                report.step_ms_median,
                report.precision
            );
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(())
}

/// Every check on one device, against the CPU (or the host's f64 reference).
pub fn check_device(device: &DeviceChoice) -> Vec<CheckResult> {
    let precision = device.effective_precision();
    let tol = tolerance(precision);
    let result = |check: &str, err: f64, tolerance: f64, detail: String| CheckResult {
        device: device.to_string(),
        precision: precision.name().into(),
        check: check.into(),
        max_rel_err: err,
        tolerance,
        pass: err <= tolerance,
        detail,
    };
    let mut out = Vec::new();
    for (name, config) in [
        ("forward_llada", tiny_llada()),
        ("forward_dream_gqa", tiny_dream()),
        ("forward_qwen3_a2d", tiny_qwen3()),
        ("forward_llada_moe", tiny_moe()),
    ] {
        let task = || ForwardTask {
            config: config.clone(),
        };
        let want = DeviceChoice::Cpu.run(task());
        let got = device.run(task());
        let err = worst_relative(&got, &want.iter().map(|&a| a as f64).collect::<Vec<_>>()).0;
        out.push(result(name, err, tol, format!("{} logits", want.len())));
    }
    let want = DeviceChoice::Cpu.run(StepTask);
    let got = device.run(StepTask);
    let err = worst_relative(&got.values(), &want.values()).0;
    out.push(result(
        "mdu_step",
        err,
        tol,
        format!(
            "forget {:.6}, retain {:.6}, |grad| {:.6}, forget after AdamW {:.6} (CPU {:.6}, {:.6}, {:.6}, {:.6})",
            got.forget, got.retain, got.grad_norm, got.forget_after,
            want.forget, want.retain, want.grad_norm, want.forget_after
        ),
    ));
    let kl = KlInputs::new(6, 126_464);
    let reference = kl_reference(&kl.x, &kl.y, kl.n, kl.v, &vec![1.0; kl.n]);
    let got = device.run(kl.clone());
    let err_kl = worst_relative(&got.kl, &reference.kl).0;
    let err_grad = worst_relative(&got.grad_x, &reference.grad_x).0;
    let path = if got.kernel {
        "kernel"
    } else {
        "composite tensor ops"
    };
    out.push(result(
        "masked_kl",
        err_kl.max(err_grad),
        KL_TOLERANCE,
        format!(
            "{} x {} f32, {path}: KL worst {err_kl:.1e}, gradient worst {err_grad:.1e}",
            kl.n, kl.v
        ),
    ));
    out
}

fn tiny_llada() -> ModelConfig {
    ModelConfig::llada_shape(64, 2, 4, 160, 1000)
}

fn tiny_dream() -> ModelConfig {
    let mut c = ModelConfig::llada_shape(64, 2, 4, 160, 1000);
    c.architecture = Architecture::Dream;
    c.num_kv_heads = 2;
    c.qkv_bias = true;
    c
}

/// Qwen3 A2D's layout: per-head q/k norm, a head wider than hidden/heads, GQA, a tied head.
fn tiny_qwen3() -> ModelConfig {
    let mut c = ModelConfig::llada_shape(64, 2, 4, 160, 1000);
    c.architecture = Architecture::Qwen3A2d;
    c.num_kv_heads = 2;
    c.head_dim = 32;
    c.rotary_dim = 32;
    c.qk_norm = true;
    c.tied_embeddings = true;
    c
}

/// LLaDA-MoE's layout: a dense first layer, then 4 routed experts (top 2) and a shared expert,
/// q/k norm and half-rotary RoPE.
fn tiny_moe() -> ModelConfig {
    let mut c = ModelConfig::llada_shape(64, 2, 4, 160, 1000);
    c.architecture = Architecture::LladaMoe;
    c.qk_norm = true;
    c.rotary_dim = 8;
    c.moe = Some(crate::model::config::MoeConfig {
        num_experts: 4,
        top_k: 2,
        expert_intermediate_size: 48,
        shared_intermediate_size: Some(64),
        moe_layers: vec![false, true],
        expert_bias: false,
    });
    c
}

/// Fixed ids `[2, 24]`, uniform below the mask id.
fn tiny_ids(config: &ModelConfig) -> Vec<Vec<u32>> {
    let mut rng = SplitMix64(11);
    (0..2)
        .map(|_| {
            (0..24)
                .map(|_| (rng.next_u64() % (config.vocab_size as u64 - 2)) as u32)
                .collect()
        })
        .collect()
}

struct ForwardTask {
    config: ModelConfig,
}

impl BackendTask for ForwardTask {
    type Output = Vec<f32>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Vec<f32> {
        let model: MaskedDiffusionLm<B> = random_init(&self.config, device, 7, 0.02);
        model.logits_host(&tiny_ids(&self.config), None, device)
    }
}

/// The numbers of one tiny MDU step.
struct StepNumbers {
    forget: f64,
    retain: f64,
    grad_norm: f64,
    forget_after: f64,
}

impl StepNumbers {
    fn values(&self) -> [f64; 4] {
        [self.forget, self.retain, self.grad_norm, self.forget_after]
    }
}

struct StepTask;

impl BackendTask for StepTask {
    type Output = StepNumbers;
    fn run<B: EngineBackend>(self, device: &B::Device) -> StepNumbers {
        tiny_step::<Autodiff<B>>(device)
    }
}

/// One MDU step on a tiny LLaDA, 4 rows × 32 tokens per batch (prompt 8), lr 1e-4: small enough
/// that Adam's first step, ≈ lr·sign(g), cannot turn round-off in near-zero gradients into a
/// visible change of the loss.
fn tiny_step<B: AutodiffBackend + KlBackend>(device: &B::Device) -> StepNumbers {
    let config = tiny_llada();
    let mask_id = config.mask_token_id.expect("llada_shape sets the mask id");
    let batch = |seed: u64| synthetic_noised_batch(&config, [4, 32, 8], seed, seed + 100);
    let (forget, retain) = (batch(21), batch(22));
    let mut model: MaskedDiffusionLm<B> = random_init(&config, device, 5, 0.02);
    let reference = model.valid();
    let mut optim = crate::train::adamw(0.01).init::<B, MaskedDiffusionLm<B>>();
    let loss = MduStepLoss {
        reference: &reference,
        forget: &forget,
        retain: &retain,
        params: MethodParams {
            tau: 0.5,
            eta: 0.1,
            ..MethodParams::default()
        },
        mask_id,
        device,
    };
    let first = loss.of(&model);
    let (forget_first, retain_first) = (first.value("forget"), first.value("retain"));
    let mut grads = GradientsParams::from_grads(first.total.backward(), &model);
    let grad_norm = clip_global_norm::<B, _>(&model, &mut grads, 1.0);
    model = optim.step(1e-4, model, grads);
    StepNumbers {
        forget: forget_first,
        retain: retain_first,
        grad_norm,
        forget_after: loss.of(&model).value("forget"),
    }
}

/// Seeded f32 logits `[n, v]` for the KL check: x ~ 3·N(0, 1), y ~ N(0, 1).
#[derive(Clone)]
struct KlInputs {
    x: Vec<f32>,
    y: Vec<f32>,
    n: usize,
    v: usize,
}

impl KlInputs {
    fn new(n: usize, v: usize) -> Self {
        let mut rng = SplitMix64(31);
        let x = (0..n * v).map(|_| 3.0 * rng.normal()).collect();
        let y = (0..n * v).map(|_| rng.normal()).collect();
        Self { x, y, n, v }
    }
}

struct KlOutputs {
    kl: Vec<f32>,
    grad_x: Vec<f32>,
    kernel: bool,
}

impl BackendTask for KlInputs {
    type Output = KlOutputs;
    fn run<B: EngineBackend>(self, device: &B::Device) -> KlOutputs {
        let tensor = |v: Vec<f32>| {
            Tensor::<Autodiff<B>, 2>::from_data(
                TensorData::new(v, [self.n, self.v]),
                (device, DType::F32),
            )
        };
        let x = tensor(self.x).require_grad();
        let y = tensor(self.y);
        let kl = kl_divergence_rows(x.clone(), y, None);
        let host = |t: TensorData| t.convert::<f32>().into_vec::<f32>().unwrap_or_default();
        let kl_host = host(kl.clone().into_data());
        let grads = kl.sum().backward();
        let grad_x = x
            .grad(&grads)
            .map(|g| host(g.into_data()))
            .unwrap_or_default();
        KlOutputs {
            kl: kl_host,
            grad_x,
            kernel: <B as KlBackend>::KL_KERNEL,
        }
    }
}
