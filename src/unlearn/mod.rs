//! Unlearning: the objectives (MDU and its baselines), the training loop that runs them in a
//! worker, and the events it reports to the CLI and the GUI.

pub mod cli;
pub mod config;
pub mod cost;
pub mod engine;
pub mod evaluation;
pub mod inputs;
pub mod memory_plan;
pub mod methods;
pub mod presets;
pub mod privacy;
pub mod run_dir;
pub mod step_loop;
pub mod sweep;

/// The engine's events (kept at this path for callers that name it here).
pub use crate::events;

pub use methods::{KlDirection, KlImpl, LossParts, Method, MethodParams, StepBatches, StepContext};

/// The error a stopped run returns (the `Stopped` event has been sent already).
#[derive(Debug, thiserror::Error)]
#[error("stopped by request")]
pub struct Stopped;
