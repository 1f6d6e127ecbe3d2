//! The unlearning objectives. Each method is one file with one `loss` function; [`Method`] lists
//! them and dispatches. All of them see the same noised batches (same t, same masks), so their
//! masked-diffusion NLL terms are comparable.

pub mod ga;
pub mod graddiff;
pub mod mdu;
pub mod npo;
pub mod rmu;
pub mod simnpo;
pub mod undial;
pub mod wga;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::diffusion::loss::{mdlm_loss, weighted_ce_terms, NoisedBatch};
use crate::kernels::KlBackend;
use crate::model::precision::accumulation_dtype;
use crate::model::MaskedDiffusionLm;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Masked Diffusion Unlearning: KL to a τ-scaled null anchor on the forget answers + α·retain SFT.
    Mdu,
    /// Gradient ascent on the forget set's masked-diffusion NLL.
    Ga,
    /// Gradient ascent on forget + gradient descent on retain.
    #[value(name = "graddiff")]
    #[serde(rename = "graddiff")]
    GradDiff,
    /// Negative preference optimisation against the frozen starting model (+ α·retain NLL).
    Npo,
    /// SimNPO: NPO on the length-normalised NLL with a margin δ, without a reference model.
    #[value(name = "simnpo")]
    SimNpo,
    /// Weighted gradient ascent: each token's ascent weighted by the model's own p(token)^β.
    Wga,
    /// UNDIAL: self-distillation towards the frozen model with the true token's logit lowered by β.
    Undial,
    /// RMU: steer one block's output on forget data to a random direction, keep retain's.
    Rmu,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Mdu,
        Method::Ga,
        Method::GradDiff,
        Method::Npo,
        Method::SimNpo,
        Method::Wga,
        Method::Undial,
        Method::Rmu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Mdu => "mdu",
            Method::Ga => "ga",
            Method::GradDiff => "graddiff",
            Method::Npo => "npo",
            Method::SimNpo => "simnpo",
            Method::Wga => "wga",
            Method::Undial => "undial",
            Method::Rmu => "rmu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::Mdu => "MDU",
            Method::Ga => "Gradient ascent",
            Method::GradDiff => "GradDiff",
            Method::Npo => "NPO",
            Method::SimNpo => "SimNPO",
            Method::Wga => "WGA",
            Method::Undial => "UNDIAL",
            Method::Rmu => "RMU",
        }
    }

    /// Whether a step needs a retain batch.
    pub fn uses_retain(self) -> bool {
        !matches!(self, Method::Ga)
    }

    /// Whether a step needs the frozen starting model (MDU only when the anchor is not uniform).
    pub fn uses_reference(self, p: &MethodParams) -> bool {
        match self {
            Method::Mdu => p.tau != 0.0,
            Method::Npo | Method::Undial | Method::Rmu => true,
            Method::Ga | Method::GradDiff | Method::SimNpo | Method::Wga => false,
        }
    }

    pub fn loss<B: AutodiffBackend + KlBackend>(
        self,
        ctx: &StepContext<B>,
        batches: &StepBatches,
        p: &MethodParams,
    ) -> LossParts<B> {
        match self {
            Method::Mdu => mdu::loss(ctx, batches, p),
            Method::Ga => ga::loss(ctx, batches, p),
            Method::GradDiff => graddiff::loss(ctx, batches, p),
            Method::Npo => npo::loss(ctx, batches, p),
            Method::SimNpo => simnpo::loss(ctx, batches, p),
            Method::Wga => wga::loss(ctx, batches, p),
            Method::Undial => undial::loss(ctx, batches, p),
            Method::Rmu => rmu::loss(ctx, batches, p),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which KL the MDU forget term minimises (mdu.md §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum KlDirection {
    /// KL(p_θ ‖ p_target), the reference's default.
    #[default]
    Forward,
    /// KL(p_target ‖ p_θ).
    Reverse,
    /// Jensen–Shannon divergence.
    Js,
}

/// Which implementation computes the MDU per-row KL (`mdu::masked_kl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum KlImpl {
    /// The backend's custom kernel where it has one (wgpu: forward and reverse KL), else the
    /// composite.
    #[default]
    Auto,
    /// The composite tensor ops (`mdu::kl_rows`, the reference) on every backend.
    Composite,
}

/// The knobs of every method; each method reads the ones it needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MethodParams {
    /// MDU anchor temperature: 0 = uniform target, 1 = the prompt-masked starting model.
    pub tau: f64,
    /// MDU extrapolation away from the conditional prediction.
    pub eta: f64,
    pub kl: KlDirection,
    /// Weight of the retain loss (MDU, GradDiff, NPO).
    pub alpha: f64,
    /// Weight of the forget loss (GradDiff, NPO).
    pub gamma: f64,
    /// NPO inverse temperature.
    pub beta: f64,
    /// MDU: leave special tokens out of the KL (their logits set to −inf on both sides).
    pub exclude_special: bool,
    /// MDU: how the per-row KL is computed (`auto`: the WGSL kernel on wgpu for the forward and
    /// reverse KL, the composite tensor ops elsewhere; `composite`: always the tensor ops).
    pub kl_impl: KlImpl,
    /// SimNPO's inverse temperature β (NPO's is `beta`).
    pub simnpo_beta: f64,
    /// SimNPO's margin δ on the length-normalised NLL.
    pub delta: f64,
    /// WGA's exponent on the token-probability weight.
    pub wga_beta: f64,
    /// UNDIAL's strength: how far the true token's teacher logit is lowered.
    pub undial_beta: f64,
    /// RMU's steered block (0-based); `None`: 7, or a quarter of the depth in a shallow model.
    pub rmu_layer: Option<usize>,
    /// RMU's steering coefficient c.
    pub rmu_coeff: f64,
    /// RMU's seed for the random direction.
    pub rmu_seed: u64,
}

impl Default for MethodParams {
    fn default() -> Self {
        Self {
            tau: 0.0,
            eta: 0.0,
            kl: KlDirection::Forward,
            alpha: 1.0,
            gamma: 1.0,
            beta: 0.1,
            exclude_special: false,
            kl_impl: KlImpl::Auto,
            simnpo_beta: 4.5,
            delta: 0.0,
            wga_beta: 1.0,
            undial_beta: 10.0,
            rmu_layer: None,
            rmu_coeff: rmu::PAPER_COEFF,
            rmu_seed: 0,
        }
    }
}

/// What a loss needs besides the batches.
pub struct StepContext<'a, B: AutodiffBackend> {
    pub model: &'a MaskedDiffusionLm<B>,
    /// The frozen starting model θ₀ (no gradient); `None` when the method does not use it.
    pub reference: Option<&'a MaskedDiffusionLm<B::InnerBackend>>,
    pub device: &'a B::Device,
    pub mask_id: u32,
    /// Ids left out of the MDU KL when `exclude_special` is set.
    pub special_ids: &'a [u32],
}

/// One step's noised forget batch and (for methods that use it) retain batch.
pub struct StepBatches<'a> {
    pub forget: &'a NoisedBatch,
    pub retain: Option<&'a NoisedBatch>,
}

/// The scalar loss to minimise and its named parts (before weighting), all `[1]` tensors.
pub struct LossParts<B: Backend> {
    pub total: Tensor<B, 1>,
    pub parts: Vec<(&'static str, Tensor<B, 1>)>,
}

impl<B: Backend> LossParts<B> {
    /// The named part read back to the host; NaN when the method has no such part.
    pub fn value(&self, name: &str) -> f64 {
        use burn::tensor::ElementConversion;
        self.parts
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(f64::NAN, |(_, t)| t.clone().into_scalar().elem::<f64>())
    }
}

/// The masked-diffusion NLL of mdlm.md ('token' normalisation; LLaDA 1/t, Dream CART weights).
pub fn nll<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    batch: &NoisedBatch,
    device: &B::Device,
) -> Tensor<B, 1> {
    mdlm_loss(model, batch, device)
}

/// The retain term, or zero when the method runs without retain data.
pub fn retain_nll<B: AutodiffBackend>(ctx: &StepContext<B>, batches: &StepBatches) -> Tensor<B, 1> {
    match batches.retain {
        Some(r) => nll(ctx.model, r, ctx.device),
        None => Tensor::zeros([1], (ctx.device, accumulation_dtype::<B>(ctx.device))),
    }
}

/// `γ·forget + α·NLL(retain)` with both parts named: how GradDiff and the baselines built on it
/// (NPO, SimNPO, WGA, UNDIAL) combine their forget term with the retain loss.
pub fn with_retain_nll<B: AutodiffBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    p: &MethodParams,
    forget: Tensor<B, 1>,
) -> LossParts<B> {
    let retain = retain_nll(ctx, batches);
    LossParts {
        total: forget.clone() * p.gamma + retain.clone() * p.alpha,
        parts: vec![("forget", forget), ("retain", retain)],
    }
}

/// Per-sequence NLL `[rows]`: Σ over the row's masked positions of weighted CE, unnormalised (the
/// MDLM bound on −log p(answer | prompt), summed as DPO/NPO sum token NLLs).
pub fn sequence_nll<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    batch: &NoisedBatch,
    device: &B::Device,
) -> Tensor<B, 1> {
    if batch.masked.is_empty() {
        return Tensor::zeros([batch.rows], (device, accumulation_dtype::<B>(device)));
    }
    let logits = batch.masked_logits(model, device);
    let terms = weighted_ce_terms(logits, &batch.targets, &batch.weights);
    // Row sums as a [rows, N] one-hot product keeps everything on the device.
    let n = batch.masked.len();
    let mut owner = vec![0.0f32; batch.rows * n];
    for (k, r) in batch.masked_rows().into_iter().enumerate() {
        owner[r * n + k] = 1.0;
    }
    let owner = Tensor::<B, 2>::from_data(
        TensorData::new(owner, [batch.rows, n]),
        (device, terms.dtype()),
    );
    owner.matmul(terms.reshape([n, 1])).reshape([batch.rows])
}
