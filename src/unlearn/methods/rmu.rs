//! RMU, representation misdirection (Li et al. 2024, "The WMDP Benchmark", and open-unlearning
//! `RMU`): on the forget batch, push the residual stream after one block towards a fixed random
//! direction `c·u/‖u‖`; on the retain batch, keep it where the frozen starting model has it:
//!
//! ```text
//! forget = mean_rows Σ_answer mean_d (h_ℓ − c·u/‖u‖)² / #answer     retain = the same with h_ℓ of θ₀
//! loss   = γ·forget + α·retain
//! ```
//!
//! Both passes read the step's noised batches. The layer defaults to 7 and c to 6.5, the values of
//! the WMDP paper's Zephyr-7B run (its repository's README: `--layer_id 7 --steering_coeffs 6.5
//! --alpha 1200`); a model with 14 blocks or fewer uses the block a quarter of the way down, as 7
//! is of 32. u is uniform in [0, 1)^d from the seed `rmu_seed`, as open-unlearning's `torch.rand`.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use super::{LossParts, MethodParams, StepBatches, StepContext};
use crate::diffusion::loss::NoisedBatch;
use crate::model::precision::at_least_f32;
use crate::model::MaskedDiffusionLm;
use crate::rng::SplitMix64;

/// The WMDP paper's layer for 7B models.
pub const PAPER_LAYER: usize = 7;
/// The WMDP paper's steering coefficient for Zephyr-7B.
pub const PAPER_COEFF: f64 = 6.5;

/// The block whose output RMU steers in a model of `num_layers` blocks.
pub fn layer(p: &MethodParams, num_layers: usize) -> usize {
    let default = if num_layers > 2 * PAPER_LAYER {
        PAPER_LAYER
    } else {
        num_layers / 4
    };
    p.rmu_layer
        .unwrap_or(default)
        .min(num_layers.saturating_sub(1))
}

/// `c·u/‖u‖` with `u` uniform in [0, 1)^dim from `seed` (normalised in f64).
pub fn direction(dim: usize, coeff: f64, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64(seed);
    let u: Vec<f64> = (0..dim).map(|_| rng.uniform()).collect();
    let norm = u
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    u.iter().map(|x| (coeff * x / norm) as f32).collect()
}

pub fn loss<B: AutodiffBackend>(
    ctx: &StepContext<B>,
    batches: &StepBatches,
    p: &MethodParams,
) -> LossParts<B> {
    let layer = layer(p, ctx.model.config.num_layers);
    let forget_batch = batches.forget;
    let hidden = at_least_f32(steered_hidden(ctx.model, forget_batch, layer, ctx.device));
    let dim = hidden.dims()[2];
    let target = Tensor::<B, 1>::from_data(
        TensorData::new(direction(dim, p.rmu_coeff, p.rmu_seed), [dim]),
        (ctx.device, hidden.dtype()),
    )
    .unsqueeze::<3>();
    let forget = activation_loss(hidden, target, forget_batch, ctx.device);
    let retain = match batches.retain {
        Some(batch) => {
            let reference = ctx
                .reference
                .expect("RMU needs the frozen starting model (the engine always provides it)");
            let ours = at_least_f32(steered_hidden(ctx.model, batch, layer, ctx.device));
            let frozen = Tensor::<B, 3>::from_inner(at_least_f32(steered_hidden(
                reference, batch, layer, ctx.device,
            )));
            activation_loss(ours, frozen, batch, ctx.device)
        }
        None => Tensor::zeros([1], (ctx.device, forget.dtype())),
    };
    LossParts {
        total: forget.clone() * p.gamma + retain.clone() * p.alpha,
        parts: vec![("forget", forget), ("retain", retain)],
    }
}

/// The residual stream after block `layer` on the batch's noised ids.
fn steered_hidden<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    batch: &NoisedBatch,
    layer: usize,
    device: &B::Device,
) -> Tensor<B, 3> {
    let ids: Vec<i64> = batch.ids.iter().map(|&t| t as i64).collect();
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch.rows, batch.width]), device);
    model.hidden_after_block(ids, layer)
}

/// open-unlearning's `compute_activation_loss` over the answer positions: per row the mean over
/// its answer tokens of the mean squared difference over dimensions, then the mean over rows.
fn activation_loss<B: Backend>(
    hidden: Tensor<B, 3>,
    target: Tensor<B, 3>,
    batch: &NoisedBatch,
    device: &B::Device,
) -> Tensor<B, 1> {
    let [rows, width, _] = hidden.dims();
    let per_token = (hidden - target)
        .powi_scalar(2)
        .mean_dim(2)
        .reshape([rows, width]);
    let mut share = vec![0f32; rows * width];
    for (r, row) in batch.answer.chunks(width).enumerate() {
        let count = row.iter().filter(|&&a| a).count();
        for (i, &a) in row.iter().enumerate() {
            if a {
                share[r * width + i] = 1.0 / count as f32;
            }
        }
    }
    let share = Tensor::<B, 2>::from_data(
        TensorData::new(share, [rows, width]),
        (device, per_token.dtype()),
    );
    (per_token * share).sum() / rows as f32
}
