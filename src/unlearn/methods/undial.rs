//! UNDIAL (Dong et al. 2024, open-unlearning `compute_undial_loss`): self-distillation towards
//! the frozen starting model with the true token's logit lowered by β, so the model learns to
//! spread the probability it gave the memorised token over the alternatives the teacher saw:
//! `soft = softmax(z₀ − β·onehot(x))`, forget = mean over masked positions of
//! `−Σ_v soft_v·log p_θ(v)` (the student and the teacher both read the step's noised forget batch),
//! plus α·NLL(retain), weighted γ and α. open-unlearning's settings: β = 10, γ = 1, α = 0.
//!
//! open-unlearning averages over every position of the sequence, question included (and indexes
//! the vocabulary with −100 at ignored labels); here only the masked answer positions count.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

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
        let teacher = ctx
            .reference
            .expect("UNDIAL needs the frozen starting model (the engine always provides it)");
        let student = at_least_f32(batch.masked_logits(ctx.model, ctx.device));
        let teacher =
            Tensor::<B, 2>::from_inner(at_least_f32(batch.masked_logits(teacher, ctx.device)));
        let [_, vocab] = student.dims();
        let targets: Vec<i64> = batch.targets.iter().map(|&t| t as i64).collect();
        let index = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 1]), ctx.device);
        let lowered = Tensor::<B, 2>::zeros([n, vocab], (ctx.device, teacher.dtype())).scatter(
            1,
            index,
            Tensor::ones([n, 1], (ctx.device, teacher.dtype())) * p.undial_beta,
            IndexingUpdateOp::Add,
        );
        let soft = softmax(teacher - lowered, 1).detach();
        (soft * log_softmax(student, 1)).sum().neg() / n as f32
    };
    with_retain_nll(ctx, batches, p, forget)
}
