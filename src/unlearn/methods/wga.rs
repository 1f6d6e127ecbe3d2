//! WGA, weighted gradient ascent (Wang et al. 2025, open-unlearning `compute_wga_loss`): gradient
//! ascent in which each token's loss is weighted by the model's own probability of it, raised to
//! β and detached, so tokens the model has already stopped predicting stop pushing:
//! `−Σ_masked w·p(x)^β·CE / #answer tokens` on the forget batch (w the diffusion weight, the same
//! normaliser as the NLL), plus α·NLL(retain), weighted γ and α as GradDiff. open-unlearning's
//! settings: β = 1, γ = 1, α = 1.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};

use super::{with_retain_nll, LossParts, MethodParams, StepBatches, StepContext};
use crate::model::precision::at_least_f32;

pub fn loss<B: AutodiffBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    p: &MethodParams,
) -> LossParts<B> {
    let batch = batches.forget;
    let n = batch.masked.len();
    let forget = if n == 0 {
        batch.connected_zero(ctx.model, ctx.device)
    } else {
        let logp = log_softmax(at_least_f32(batch.masked_logits(ctx.model, ctx.device)), 1);
        let targets: Vec<i64> = batch.targets.iter().map(|&t| t as i64).collect();
        let index = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 1]), ctx.device);
        let ce = logp.gather(1, index).reshape([n]).neg();
        let weight = ce.clone().neg().exp().powf_scalar(p.wga_beta).detach();
        let w = Tensor::<B, 1>::from_data(
            TensorData::new(batch.weights.clone(), [n]),
            (ctx.device, ce.dtype()),
        );
        (ce * weight * w).sum().neg() / batch.maskable.max(1) as f32
    };
    with_retain_nll(ctx, batches, p, forget)
}
