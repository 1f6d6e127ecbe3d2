//! MDU Workbench: masked-diffusion language models (LLaDA, Dream) on Burn, and the engine that
//! unlearns a forget set from them. The `mdu` binary wraps this library in a GUI and a CLI.
//!
//! - [`model`]: the bidirectional transformer and the two architectures' config keys and tensor names.
//! - [`checkpoint`]: HF safetensors folders (single or sharded; f32/f16/bf16), load and save.
//! - [`tokenizer`]: tokenizers, special ids and chat templates from a checkpoint folder.
//! - [`data`]: TOFU-format question–answer files.
//! - [`demo`]: the generated world of fictitious people behind the embedded demo.
//! - [`device`]: backend choice (CUDA → wgpu → CPU) and device listing.
//! - [`bench`]: forward, training-step, masked-KL and MDU-step benchmarks.
//! - [`events`]: what a run reports (plain values; the window draws them, the CLI prints them).
//! - [`session`]: the engine session, a worker that owns loaded models; the window and the CLI send
//!   it commands and read plain events and results.
//! - [`selftest`]: GPU parity checks against the CPU, then the MDU step benchmark (`mdu selftest --gpu`).
//! - `gui`: the eframe application (feature `gui`, on by default).
//! - [`kernels`]: custom WGSL kernels as Burn backend extensions (the MDU masked KL).
//! - [`kernel_runtime`]: CubeCL's caches in the user's cache folder, kernel-preparation counts,
//!   and device-thread panics as one line.

pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod demo;
pub mod device;
pub mod diffusion;
pub mod eval;
pub mod events;
pub mod finetune;
#[cfg(feature = "gui")]
pub mod gui;
pub mod inside;
pub mod kernel_runtime;
pub mod kernels;
pub mod model;
pub mod rng;
pub mod score;
pub mod selftest;
pub mod session;
pub mod tokenizer;
pub mod train;
pub mod unlearn;

use std::path::Path;

use burn::tensor::backend::Backend;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use model::MaskedDiffusionLm;

/// Opens a checkpoint folder, checks it fits `device`, and loads it as f32.
pub fn load_model<B: Backend>(
    dir: &Path,
    device: &B::Device,
    budget: &checkpoint::MemoryBudget,
) -> Result<(Checkpoint, MaskedDiffusionLm<B>), CheckpointError> {
    let ckpt = Checkpoint::open(dir)?;
    let model = ckpt.load::<B>(device, budget)?;
    Ok((ckpt, model))
}
