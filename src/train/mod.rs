//! Optimisation pieces shared by fine-tuning and unlearning: the learning-rate schedule, PyTorch-style
//! global-norm gradient clipping (burn 0.21 clips per tensor), the AdamW settings and resumable
//! trainer checkpoints.

pub mod clip;
pub mod resume;
pub mod schedule;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{
    AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, LearningRate, SimpleOptimizer,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

/// AdamW as PyTorch defines it (β = (0.9, 0.999), ε = 1e-8), with decoupled weight decay, its
/// moments and update in f32 whatever the weights' storage ([`F32Moments`]).
pub fn adamw(weight_decay: f32) -> AdamWF32 {
    AdamWF32(
        AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .with_weight_decay(weight_decay),
    )
}

/// The AdamW settings; [`AdamWF32::init`] builds the optimizer for a module.
pub struct AdamWF32(pub AdamWConfig);

impl AdamWF32 {
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
    ) -> OptimizerAdaptor<F32Moments<AdamW>, M, B> {
        OptimizerAdaptor::from(F32Moments(self.0.build()))
    }
}

/// Runs an optimizer's step in f32: a bf16/f16 parameter and its gradient are widened, the inner
/// optimizer keeps its state (AdamW's moments) in f32, and the updated parameter is stored back
/// in its own type. With f32 parameters the casts are no-ops. This is the precision policy's
/// "f32 optimizer moments"; the weights themselves stay in their storage type, as in the PyTorch
/// baseline (`scripts/bench_step.py`).
#[derive(Clone)]
pub struct F32Moments<O>(pub O);

impl<B: Backend, O: SimpleOptimizer<B>> SimpleOptimizer<B> for F32Moments<O> {
    type State<const D: usize> = O::State<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let storage = tensor.dtype();
        let (updated, state) = self.0.step(
            lr,
            crate::model::precision::at_least_f32(tensor),
            crate::model::precision::at_least_f32(grad),
            state,
        );
        // Burn's cast returns the tensor untouched when it already has the type.
        (updated.cast(storage), state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        O::to_device(state, device)
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
