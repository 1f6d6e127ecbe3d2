//! The layers every block is made of: `x·Wᵀ + b` (with its LoRA term), RMSNorm, SiLU, and the
//! SwiGLU MLP that is a dense layer's feed-forward and each expert of an MoE layer.

use burn::module::{Module, Param};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use super::lora::{LoraPair, MlpAdapters};
use super::precision::at_least_f32;

/// One adapter as a forward pass applies it: the pair, its scale and its dropout.
pub struct LoraUse<'a, B: Backend> {
    pub pair: &'a LoraPair<B>,
    pub scale: f64,
    pub dropout: f64,
}

impl<B: Backend> Clone for LoraUse<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend> Copy for LoraUse<'_, B> {}

/// A SwiGLU MLP, `down(silu(gate(x)) · up(x))`, weights in the HF `[out, in]` layout.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate: Param<Tensor<B, 2>>,
    pub up: Param<Tensor<B, 2>>,
    pub down: Param<Tensor<B, 2>>,
}

impl<B: Backend> Mlp<B> {
    /// The MLP on rows `[N, D]`, with `adapters` (scale, dropout) on its projections.
    pub fn forward_rows(
        &self,
        rows: Tensor<B, 2>,
        adapters: Option<(&MlpAdapters<B>, f64, f64)>,
    ) -> Tensor<B, 2> {
        let use_of = |pick: fn(&MlpAdapters<B>) -> &Option<LoraPair<B>>| {
            adapters.and_then(|(a, scale, dropout)| {
                pick(a).as_ref().map(|pair| LoraUse {
                    pair,
                    scale,
                    dropout,
                })
            })
        };
        let gate = linear_rows(rows.clone(), &self.gate, None, use_of(|a| &a.gate));
        let up = linear_rows(rows, &self.up, None, use_of(|a| &a.up));
        linear_rows(swish(gate) * up, &self.down, None, use_of(|a| &a.down))
    }
}

/// SiLU. Without a gradient to track (evaluation, generation, frozen passes) it is
/// `x / (1 + exp(−x))`: one exponential and four passes, where Burn's generic sigmoid takes two
/// exponentials, a logarithm and six (ndarray has no fused sigmoid). That form is exact at both
/// tails in the forward (−x/∞ = −0) but its autodiff backward would give ∞/∞ there, so on an
/// autodiff backend Burn's `silu`, whose sigmoid node has a stable backward, is kept. (The test is
/// the backend, not `is_require_grad`, which is false for every tensor but a leaf.)
pub fn swish<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if B::ad_enabled(&x.device()) {
        silu(x)
    } else {
        x.clone() / (x.neg().exp() + 1.0)
    }
}

/// `x @ W^T + b` with `W` in the HF `[out, in]` layout, as one `[B·L, in] × [in, out]` product
/// (a single large GEMM is faster than a batch of small ones on every backend we run), plus the
/// LoRA term when the projection has an adapter.
pub fn linear<B: Backend>(
    x: Tensor<B, 3>,
    weight: &Param<Tensor<B, 2>>,
    bias: Option<&Param<Tensor<B, 1>>>,
    lora: Option<LoraUse<'_, B>>,
) -> Tensor<B, 3> {
    let [batch, len, d_in] = x.dims();
    let y = linear_rows(x.reshape([batch * len, d_in]), weight, bias, lora);
    let d_out = y.dims()[1];
    y.reshape([batch, len, d_out])
}

/// [`linear`] on rows `[N, in]`.
pub fn linear_rows<B: Backend>(
    rows: Tensor<B, 2>,
    weight: &Param<Tensor<B, 2>>,
    bias: Option<&Param<Tensor<B, 1>>>,
    lora: Option<LoraUse<'_, B>>,
) -> Tensor<B, 2> {
    let y = rows.clone().matmul(weight.val().transpose());
    let y = match bias {
        Some(b) => y + b.val().unsqueeze::<2>(),
        None => y,
    };
    match lora {
        Some(l) => y + l.pair.delta(rows, l.scale, l.dropout),
        None => y,
    }
}

/// RMSNorm over the last dimension as HF computes it: normalise in f32, cast back, then multiply
/// the weight.
pub fn rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: &Param<Tensor<B, 1>>,
    eps: f64,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    let xf = at_least_f32(x);
    let rms = (xf.clone().powi_scalar(2).mean_dim(D - 1) + eps).sqrt();
    let normed = xf / rms;
    let normed = if dtype == DType::F32 {
        normed
    } else {
        normed.cast(dtype)
    };
    normed * weight.val().unsqueeze::<D>()
}
