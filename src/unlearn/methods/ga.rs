//! Gradient ascent: maximise the forget set's masked-diffusion NLL. No retain term, so the
//! model collapses on everything; it is the baseline that shows what MDU avoids.

use burn::tensor::backend::AutodiffBackend;

use super::{nll, LossParts, MethodParams, StepBatches, StepContext};

pub fn loss<B: AutodiffBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    _p: &MethodParams,
) -> LossParts<B> {
    let forget = nll(ctx.model, batches.forget, ctx.device).neg();
    LossParts {
        total: forget.clone(),
        parts: vec![("forget", forget)],
    }
}
