//! Masked Diffusion Unlearning (mdu.md §3): at the masked answer positions of the forget batch,
//! pull the model's prediction given the question towards a "null anchor": the frozen starting
//! model's prediction when the question (and everything else outside the answer) is masked,
//! scaled by τ. τ = 0 makes the anchor uniform; η extrapolates away from the conditional
//! prediction. Plus α × the retain masked-diffusion NLL.
//!
//! `target = detach(τ·(z_u − η·(z_c − z_u)))`, loss = Σ_i KL_i / #masked (no 1/t weight).

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use super::{retain_nll, KlDirection, KlImpl, LossParts, MethodParams, StepBatches, StepContext};
use crate::diffusion::loss::{logits_at, NoisedBatch};
use crate::kernels::{kl_divergence_rows, KlBackend};
use crate::model::precision::at_least_f32;

pub fn loss<B: AutodiffBackend + KlBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    p: &MethodParams,
) -> LossParts<B> {
    let forget = null_anchor_kl(ctx, batches.forget, p);
    let retain = retain_nll(ctx, batches);
    LossParts {
        total: forget.clone() + retain.clone() * p.alpha,
        parts: vec![("forget", forget), ("retain", retain)],
    }
}

/// The forget term: mean KL over the masked answer positions.
pub fn null_anchor_kl<B: AutodiffBackend + KlBackend>(
    ctx: &StepContext<B>,
    batch: &NoisedBatch,
    p: &MethodParams,
) -> Tensor<B, 1> {
    let n = batch.masked.len();
    if n == 0 {
        return batch.connected_zero(ctx.model, ctx.device);
    }
    let (rows, width) = (batch.rows, batch.width);
    let conditional = at_least_f32(batch.masked_logits(ctx.model, ctx.device));
    let vocab = conditional.dims()[1];
    let target = if p.tau == 0.0 {
        // τ·(anything finite) = 0: the anchor is uniform and the frozen pass can be skipped.
        Tensor::<B, 2>::zeros([n, vocab], (ctx.device, conditional.dtype()))
    } else {
        let reference = ctx
            .reference
            .expect("MDU with τ ≠ 0 needs the frozen starting model");
        // x_u: every non-answer position (BOS, template, question, padding) becomes the mask.
        let anchor_ids: Vec<u32> = batch
            .ids
            .iter()
            .zip(&batch.answer)
            .map(|(&id, &is_answer)| if is_answer { id } else { ctx.mask_id })
            .collect();
        let unconditional = Tensor::<B, 2>::from_inner(at_least_f32(logits_at(
            reference,
            &anchor_ids,
            rows,
            width,
            &batch.masked,
            ctx.device,
        )));
        let c = conditional.clone().detach();
        ((unconditional.clone() - (c - unconditional) * p.eta) * p.tau).detach()
    };
    let (conditional, target) = if p.exclude_special {
        let keep = kept_columns(vocab, ctx.special_ids, ctx.device);
        (conditional.select(1, keep.clone()), target.select(1, keep))
    } else {
        (conditional, target)
    };
    masked_kl(conditional, target, p.kl, p.kl_impl).sum() / n as f32
}

/// The per-row KL `[N]` the forget term sums: the backend's kernel where it has one for this
/// direction (wgpu: forward and reverse; `KlImpl::Auto`), else the composite [`kl_rows`].
/// Reverse KL(p_t ‖ p_c) is the kernel's KL(softmax(x) ‖ softmax(y)) with x = target, y =
/// conditional. Jensen–Shannon always takes the composite.
pub fn masked_kl<B: KlBackend>(
    conditional: Tensor<B, 2>,
    target: Tensor<B, 2>,
    direction: KlDirection,
    implementation: KlImpl,
) -> Tensor<B, 1> {
    let kernel = B::KL_KERNEL && implementation == KlImpl::Auto;
    match direction {
        KlDirection::Forward if kernel => kl_divergence_rows(conditional, target, None),
        KlDirection::Reverse if kernel => kl_divergence_rows(target, conditional, None),
        _ => kl_rows(conditional, target, direction),
    }
}

/// Column indices of the non-special vocabulary. Dropping the special columns equals the
/// reference's −inf logits followed by `nan_to_num` (those terms contribute exactly 0).
fn kept_columns<B: Backend>(
    vocab: usize,
    special: &[u32],
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    let keep: Vec<i64> = (0..vocab as u32)
        .filter(|v| !special.contains(v))
        .map(i64::from)
        .collect();
    let n = keep.len();
    Tensor::from_data(TensorData::new(keep, [n]), device)
}

/// Per-row divergence `[N]` between softmax(conditional) and softmax(target), both `[N, V]`:
/// the composite tensor-op reference (and the path on backends without a kernel).
pub fn kl_rows<B: Backend>(
    conditional: Tensor<B, 2>,
    target: Tensor<B, 2>,
    direction: KlDirection,
) -> Tensor<B, 1> {
    let n = conditional.dims()[0];
    let log_c = log_softmax(conditional, 1);
    let log_t = log_softmax(target, 1);
    let (p_c, p_t) = (log_c.clone().exp(), log_t.clone().exp());
    let rows = match direction {
        KlDirection::Forward => p_c * finite_or_zero(log_c - log_t),
        KlDirection::Reverse => p_t * finite_or_zero(log_t - log_c),
        KlDirection::Js => {
            let log_m = ((p_c.clone() + p_t.clone()) * 0.5).clamp_min(1e-12).log();
            (p_c * finite_or_zero(log_c - log_m.clone()) + p_t * finite_or_zero(log_t - log_m))
                * 0.5
        }
    };
    rows.sum_dim(1).reshape([n])
}

/// `nan_to_num(x, nan=0, posinf=0, neginf=0)`, as the reference applies to each log-ratio.
fn finite_or_zero<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let bad = x.clone().is_nan().bool_or(x.clone().is_inf());
    x.mask_fill(bad, 0.0)
}
