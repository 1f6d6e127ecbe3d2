//! One integration-test binary (one link of Burn instead of one per file).
//!
//! Reference values come from `scripts/make_fixtures.py` (PyTorch written from mdlm.md's formulas,
//! cross-checked against transformers' Llama/Qwen2 with the causal mask removed) and are committed
//! under `tests/fixtures/`.

mod architecture;
mod checkpoint_io;
mod checkpointing;
mod cli;
mod common;
mod data_files;
mod demo;
mod demo_world;
mod diffusion;
mod fuzz;
#[cfg(feature = "gui")]
mod gui;
#[cfg(feature = "gui")]
mod gui_setup;
#[cfg(feature = "gui")]
mod gui_snapshots;
mod inside;
mod kernel_runtime;
mod kl_cube;
mod kl_kernel;
mod likelihood;
mod lora;
mod mia;
mod model_families;
mod moments;
mod objectives;
mod ordering;
mod parity;
mod privacy;
mod sampler;
mod save_faults;
mod score;
mod selftest;
mod stats;
mod tokenizer;
mod training;
mod unlearn;
