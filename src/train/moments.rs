//! AdamW's moments in f32 (the default) or bf16 (half their memory, for full fine-tuning of large
//! models).
//!
//! Whatever the moments are stored in, a step computes in f32: the parameter, its gradient and
//! both moments are widened, Burn's AdamW updates them, and the parameter goes back to its own
//! storage type. bf16 moments are then rounded to bf16 **stochastically**: to one of the two
//! neighbouring bf16 values with probabilities proportional to closeness, so the stored moment is
//! right on average. Rounding to nearest would not do: with β₂ = 0.999 the second moment's
//! per-step change (0.1 % of it) is below half a bf16 step (0.2–0.4 %), so it would stop
//! following the gradients (`tests/suite/moments.rs` shows it stall at about half its value).
//!
//! On a device with bf16 storage (CUDA) the rounded moments are kept as bf16 tensors. A device
//! without it (the CPU's ndarray, most wgpu adapters) keeps the same bf16 values in f32 tensors:
//! the same numbers, no memory saved; the engine says so when such a run starts.

use burn::optim::{AdamW, LearningRate, SimpleOptimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Tensor};

use crate::model::precision::at_least_f32;

/// What AdamW keeps its two moments in (`moments` in a run config, `--moments`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum MomentPrecision {
    /// 8 bytes per trained parameter.
    #[default]
    F32,
    /// 4 bytes per trained parameter where the device stores bf16; stochastically rounded.
    Bf16,
}

impl MomentPrecision {
    /// Bytes per trained parameter for both moments on a device that can (`bf16_storage`) or
    /// cannot store bf16 tensors.
    pub fn bytes_per_parameter(self, bf16_storage: bool) -> u64 {
        match (self, bf16_storage) {
            (MomentPrecision::Bf16, true) => 4,
            _ => 8,
        }
    }
}

/// Runs AdamW's step in f32 and keeps its moments as [`MomentPrecision`] says (see the module).
#[derive(Clone)]
pub struct AdamWMoments {
    pub inner: AdamW,
    pub moments: MomentPrecision,
}

impl<B: Backend> SimpleOptimizer<B> for AdamWMoments {
    type State<const D: usize> = <AdamW as SimpleOptimizer<B>>::State<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let storage = tensor.dtype();
        let state = state.map(|mut s| {
            s.momentum.moment_1 = at_least_f32(s.momentum.moment_1);
            s.momentum.moment_2 = at_least_f32(s.momentum.moment_2);
            s
        });
        let (updated, state) = self
            .inner
            .step(lr, at_least_f32(tensor), at_least_f32(grad), state);
        let state = match self.moments {
            MomentPrecision::F32 => state,
            MomentPrecision::Bf16 => state.map(|mut s| {
                s.momentum.moment_1 = store_bf16(s.momentum.moment_1);
                s.momentum.moment_2 = store_bf16(s.momentum.moment_2);
                s
            }),
        };
        // Burn's cast returns the tensor untouched when it already has the type.
        (updated.cast(storage), state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <AdamW as SimpleOptimizer<B>>::to_device(state, device)
    }
}

/// `x` (f32) stochastically rounded to bf16, as a bf16 tensor where the device stores bf16 and as
/// f32 holding bf16 values elsewhere.
fn store_bf16<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let noise = x.random_like(Distribution::Uniform(-0.5, 0.5));
    let rounded = round_to_bf16(x, Some(noise));
    if crate::model::precision::stores_bf16::<B>(&rounded.device()) {
        rounded.cast(DType::BF16)
    } else {
        rounded
    }
}

/// `x` rounded to a bf16 value (8 significant bits), returned in `x`'s f32 tensor: to nearest (ties
/// to even) without `noise`; with `noise` uniform in [−½, ½), stochastically: `x + noise·ulp`
/// rounded to nearest lands on the upper neighbour with probability (x − lower)/ulp.
///
/// Computed with exact operations only (a power of two, comparisons, division and multiplication
/// by it, `round`), so it gives the same values on every backend; results are bf16's finite
/// normal values (magnitudes from 2⁻¹²⁶, below which steps of 2⁻¹³³ are kept).
pub fn round_to_bf16<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    noise: Option<Tensor<B, D>>,
) -> Tensor<B, D> {
    let magnitude = x.clone().abs().clamp_min(f32::MIN_POSITIVE);
    // 2^⌊log₂|x|⌋, first from the logarithm, then made exact by comparing with |x|.
    let exponent = magnitude
        .clone()
        .log()
        .div_scalar(std::f32::consts::LN_2)
        .floor();
    let power = exponent.ones_like().mul_scalar(2.0).powf(exponent);
    let power = power.clone().mask_where(
        power.clone().greater(magnitude.clone()),
        power.clone().div_scalar(2.0),
    );
    let power = power.clone().mask_where(
        power.clone().mul_scalar(2.0).lower_equal(magnitude),
        power.mul_scalar(2.0),
    );
    // bf16 keeps 7 fraction bits: values in [2^e, 2^(e+1)) are multiples of 2^(e−7).
    let ulp = power.div_scalar(128.0);
    let shifted = match noise {
        Some(noise) => x + noise * ulp.clone(),
        None => x,
    };
    (shifted / ulp.clone()).round() * ulp
}
