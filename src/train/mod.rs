//! Optimisation pieces shared by fine-tuning and unlearning: the learning-rate schedule, PyTorch-style
//! global-norm gradient clipping (burn 0.21 clips per tensor), and the AdamW settings.

pub mod clip;
pub mod schedule;

use burn::optim::AdamWConfig;

/// AdamW as PyTorch defines it (β = (0.9, 0.999), ε = 1e-8), with decoupled weight decay.
pub fn adamw(weight_decay: f32) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(weight_decay)
}
