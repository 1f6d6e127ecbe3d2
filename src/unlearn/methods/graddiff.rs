//! GradDiff (open-unlearning): γ·(−NLL(forget)) + α·NLL(retain).

use burn::tensor::backend::AutodiffBackend;

use super::{nll, with_retain_nll, LossParts, MethodParams, StepBatches, StepContext};

pub fn loss<B: AutodiffBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    p: &MethodParams,
) -> LossParts<B> {
    let forget = nll(ctx.model, batches.forget, ctx.device).neg();
    with_retain_nll(ctx, batches, p, forget)
}
