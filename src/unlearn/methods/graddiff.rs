//! GradDiff (open-unlearning): γ·(−NLL(forget)) + α·NLL(retain).

use burn::tensor::backend::AutodiffBackend;

use super::{nll, retain_nll, LossParts, MethodParams, StepBatches, StepContext};

pub fn loss<B: AutodiffBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    p: &MethodParams,
) -> LossParts<B> {
    let forget = nll(ctx.model, batches.forget, ctx.device).neg();
    let retain = retain_nll(ctx, batches);
    LossParts {
        total: forget.clone() * p.gamma + retain.clone() * p.alpha,
        parts: vec![("forget", forget), ("retain", retain)],
    }
}
