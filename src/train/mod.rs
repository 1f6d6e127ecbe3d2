//! Optimisation pieces shared by fine-tuning and unlearning: the learning-rate schedule, PyTorch-style
//! global-norm gradient clipping (burn 0.21 clips per tensor), the AdamW settings and resumable
//! trainer checkpoints.

pub mod clip;
pub mod resume;
pub mod schedule;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;

/// AdamW as PyTorch defines it (β = (0.9, 0.999), ε = 1e-8), with decoupled weight decay.
pub fn adamw(weight_decay: f32) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(weight_decay)
}

/// `acc + next`, parameter by parameter (gradient accumulation over micro-batches).
pub fn accumulate_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    acc: GradientsParams,
    next: GradientsParams,
) -> GradientsParams {
    let mut accumulator = GradientsAccumulator::<M>::new();
    accumulator.accumulate(model, acc);
    accumulator.accumulate(model, next);
    accumulator.grads()
}
