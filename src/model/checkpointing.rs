//! Per-block activation checkpointing for training steps.
//!
//! Burn 0.21 has no way to mark a sub-graph for recomputation (its checkpointing strategies pick
//! single operations), so the blocks are run outside the autodiff graph and their backward pass is
//! done here, block by block:
//!
//! 1. **Forward.** A model carrying a [`BlockTape`] runs its blocks on the inner (no-autodiff)
//!    backend, keeping only each block's input `[B, L, D]`. The last block's output becomes a
//!    fresh leaf of the graph, so the final norm, the LM head and the loss are tracked as usual.
//! 2. **Backward.** [`BlockTape::gradients`] runs the loss's backward pass (head and loss), reads
//!    the gradient at that leaf, then for the last block down to the first: recomputes the block
//!    from its kept input with autodiff on, back-propagates `Σ y ⊙ g` (whose gradient is `g`),
//!    takes the block's weight gradients and the gradient at its input, and frees the block's
//!    graph. The embedding gets `g` last.
//!
//! At any moment the step holds the blocks' inputs plus one block's activations, instead of every
//! block's activations. The price is one more forward pass through the blocks. The gradients are
//! those of the untaped step up to floating-point order (the same operations, run separately).
//!
//! A recomputed block must see the randomness of its first run; LoRA dropout draws new masks, so
//! checkpointing refuses it (`LoraSettings::validate_with_checkpointing`).

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex};

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Tensor};

use super::rope::Rope;
use super::transformer::{BlockPass, BlockRunner, BlockRunnerHandle, MaskedDiffusionLm};

/// The kept block inputs of every tracked forward pass since the tape was made.
struct BlockTape<B: AutodiffBackend> {
    entries: Mutex<Vec<TapeEntry<B>>>,
}

/// One forward pass through the blocks, as the backward pass needs it.
struct TapeEntry<B: AutodiffBackend> {
    /// The model that ran it (the same tensors as the trained one, without the tape).
    model: MaskedDiffusionLm<B>,
    /// The embedding output, still in the graph (the embedding's gradient comes through it).
    embedded: Tensor<B, 3>,
    /// Each block's input, outside the graph.
    inputs: Vec<Tensor<B::InnerBackend, 3>>,
    /// The last block's output as a leaf of the graph.
    output: Tensor<B, 3>,
    mask: Option<Tensor<B, 4, Bool>>,
}

impl<B: AutodiffBackend> Default for BlockTape<B> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl<B: AutodiffBackend> BlockTape<B> {
    /// `model` (a cheap clone: the tensors are shared) recording onto this tape.
    fn attach(self: &Arc<Self>, model: &MaskedDiffusionLm<B>) -> MaskedDiffusionLm<B> {
        let mut taped = model.clone();
        taped.block_runner = Some(BlockRunnerHandle(self.clone()));
        taped
    }

    /// The blocks of `model` on `x` (the embedding output), checkpointed; returns the last
    /// block's output as a graph leaf.
    fn forward(
        &self,
        model: &MaskedDiffusionLm<B>,
        x: Tensor<B, 3>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let len = x.dims()[1];
        let inner = model.valid();
        let rope = Rope::new(&model.config, len, &x.device());
        let inner_mask = mask.clone().map(Tensor::inner);
        let mut inputs = Vec::with_capacity(model.blocks.len());
        let mut h = x.clone().inner();
        for layer in 0..model.blocks.len() {
            inputs.push(h.clone());
            h = inner.block_forward(layer, h, &rope, inner_mask.clone());
        }
        let output = Tensor::<B, 3>::from_inner(h).require_grad();
        let mut kept = model.clone();
        kept.block_runner = None;
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(TapeEntry {
                model: kept,
                embedded: x,
                inputs,
                output: output.clone(),
                mask,
            });
        output
    }

    /// The gradient of `loss` for every trainable weight of `model` (the model the tape was
    /// attached to): the loss's own backward pass, then each recorded pass's blocks, last first.
    /// The tape is empty afterwards.
    fn gradients(&self, loss: Tensor<B, 1>, model: &MaskedDiffusionLm<B>) -> GradientsParams {
        let mut grads = loss.backward();
        let entries = std::mem::take(
            &mut *self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let pending: Vec<_> = entries
            .into_iter()
            .filter_map(|entry| {
                let g = entry.output.grad_remove(&mut grads)?;
                Some((entry, g))
            })
            .collect();
        let mut sum = GradientsAccumulator::<MaskedDiffusionLm<B>>::new();
        sum.accumulate(model, GradientsParams::from_grads(grads, model));
        for (entry, g) in pending.into_iter().rev() {
            entry.backward(g, model, &mut sum);
        }
        sum.grads()
    }
}

/// `forward(model)`, then the gradient of the loss it returns for every trainable weight of
/// `model`; with `checkpointing`, the forward pass records onto a tape and the blocks are
/// recomputed one at a time. Returns the loss, what `forward` returned beside it, and the
/// gradients.
pub fn loss_and_gradients<B: AutodiffBackend, T>(
    model: &MaskedDiffusionLm<B>,
    checkpointing: bool,
    forward: impl FnOnce(&MaskedDiffusionLm<B>) -> (Tensor<B, 1>, T),
) -> (Tensor<B, 1>, T, GradientsParams) {
    if !checkpointing {
        let (loss, extra) = forward(model);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        return (loss, extra, grads);
    }
    let tape = Arc::new(BlockTape::default());
    let (loss, extra) = forward(&tape.attach(model));
    let grads = tape.gradients(loss.clone(), model);
    (loss, extra, grads)
}

impl<B: AutodiffBackend> TapeEntry<B> {
    fn backward(
        self,
        mut g: Tensor<B::InnerBackend, 3>,
        model: &MaskedDiffusionLm<B>,
        sum: &mut GradientsAccumulator<MaskedDiffusionLm<B>>,
    ) {
        let TapeEntry {
            model: ran,
            embedded,
            mut inputs,
            mask,
            ..
        } = self;
        let len = embedded.dims()[1];
        let rope = Rope::new(&ran.config, len, &embedded.device());
        for layer in (0..inputs.len()).rev() {
            let x = Tensor::<B, 3>::from_inner(inputs.pop().expect("one input per block"))
                .require_grad();
            let y = ran.block_forward(layer, x.clone(), &rope, mask.clone());
            let mut grads = (y * Tensor::from_inner(g)).sum().backward();
            g = x
                .grad_remove(&mut grads)
                .expect("a recomputed block's input gets a gradient");
            sum.accumulate(model, GradientsParams::from_grads(grads, model));
        }
        // `is_require_grad` is true for leaves only: ask the embedding weight.
        if ran.embed.val().is_require_grad() {
            let grads = (embedded * Tensor::from_inner(g)).sum().backward();
            sum.accumulate(model, GradientsParams::from_grads(grads, model));
        }
    }
}

impl<B: AutodiffBackend> BlockRunner for BlockTape<B> {
    fn backend(&self) -> TypeId {
        TypeId::of::<B>()
    }

    fn run_blocks(&self, pass: Box<dyn Any>) -> Box<dyn Any> {
        let pass = pass
            .downcast::<BlockPass<B>>()
            .expect("the model checked the backend");
        Box::new(self.forward(&pass.model, pass.x, pass.mask))
    }
}
