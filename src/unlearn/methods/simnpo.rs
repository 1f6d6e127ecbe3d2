//! SimNPO (Fan et al. 2024, open-unlearning `SimNPO`): NPO without the reference model, on the
//! length-normalised NLL and with a margin δ:
//! `mean_rows −(2/β)·log σ(β·(NLL_θ(y)/|y| − δ))` on the forget batch, plus α·NLL(retain),
//! weighted γ and α as GradDiff (β is `simnpo_beta`, apart from NPO's `beta`). For a
//! masked-diffusion model NLL_θ(y) is the per-sequence masked-diffusion NLL on the step's noised
//! batch (the MDLM bound, as NPO uses) and |y| the answer's length in tokens. open-unlearning's
//! TOFU settings: β = 4.5, δ = 0, γ = 0.125, α = 1.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

use super::{sequence_nll, with_retain_nll, LossParts, MethodParams, StepBatches, StepContext};

pub fn loss<B: AutodiffBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    p: &MethodParams,
) -> LossParts<B> {
    let batch = batches.forget;
    let nll = sequence_nll(ctx.model, batch, ctx.device);
    let lengths: Vec<f32> = batch
        .answer
        .chunks(batch.width)
        .map(|row| row.iter().filter(|&&a| a).count().max(1) as f32)
        .collect();
    let lengths = Tensor::<B, 1>::from_data(
        TensorData::new(lengths, [batch.rows]),
        (ctx.device, nll.dtype()),
    );
    let margin = (nll / lengths - p.delta) * p.simnpo_beta;
    // −log σ(m) = max(−m, 0) + log1p(e^−|m|): Burn's log σ(m) = −log(1 + e^−m) rounds 1 + e^−m to 1
    // in f32 once m > 17, where the term is still 1e-8 and more.
    let softplus = margin.clone().neg().clamp_min(0.0) + margin.abs().neg().exp().log1p();
    let forget = (softplus * (2.0 / p.simnpo_beta)).mean();
    with_retain_nll(ctx, batches, p, forget)
}
