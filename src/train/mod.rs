//! Optimisation pieces shared by fine-tuning and unlearning: the learning-rate schedule, PyTorch-style
//! global-norm gradient clipping (burn 0.21 clips per tensor), the AdamW settings and resumable
//! trainer checkpoints.

pub mod clip;
pub mod moments;
pub mod resume;
pub mod schedule;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;

pub use moments::{AdamWMoments, MomentPrecision};

/// AdamW as PyTorch defines it (β = (0.9, 0.999), ε = 1e-8), with decoupled weight decay, its
/// update in f32 whatever the weights' storage and its moments in f32 unless
/// [`AdamWSettings::with_moments`] says bf16 (`moments.rs`).
pub fn adamw(weight_decay: f32) -> AdamWSettings {
    AdamWSettings {
        config: AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .with_weight_decay(weight_decay),
        moments: MomentPrecision::F32,
    }
}

/// The AdamW settings; [`AdamWSettings::init`] builds the optimizer for a module.
pub struct AdamWSettings {
    pub config: AdamWConfig,
    pub moments: MomentPrecision,
}

impl AdamWSettings {
    pub fn with_moments(self, moments: MomentPrecision) -> Self {
        Self { moments, ..self }
    }

    /// The optimizer of a run whose moments are `moments`.
    pub fn for_run<B: AutodiffBackend, M: AutodiffModule<B>>(
        self,
        moments: MomentPrecision,
    ) -> OptimizerAdaptor<AdamWMoments, M, B> {
        self.with_moments(moments).init()
    }

    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
    ) -> OptimizerAdaptor<AdamWMoments, M, B> {
        OptimizerAdaptor::from(AdamWMoments {
            inner: self.config.build(),
            moments: self.moments,
        })
    }
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
