//! NPO (open-unlearning `compute_dpo_loss` with no winning answer):
//! `mean_rows −(2/β)·log σ(β·(NLL_θ − NLL_ref))` on the forget batch, with per-sequence
//! masked-diffusion NLLs of the model and the frozen starting model on the same t and masks,
//! plus α·NLL(retain).

use burn::tensor::activation::log_sigmoid;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

use super::{sequence_nll, with_retain_nll, LossParts, MethodParams, StepBatches, StepContext};

pub fn loss<B: AutodiffBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    p: &MethodParams,
) -> LossParts<B> {
    let reference = ctx
        .reference
        .expect("NPO needs the frozen starting model (the engine always provides it)");
    let current = sequence_nll(ctx.model, batches.forget, ctx.device);
    let frozen = Tensor::<B, 1>::from_inner(sequence_nll(reference, batches.forget, ctx.device));
    let forget = (log_sigmoid((current - frozen) * p.beta) * (-2.0 / p.beta)).mean();
    with_retain_nll(ctx, batches, p, forget)
}
