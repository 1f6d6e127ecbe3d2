//! Unlearning: the objectives (MDU and its baselines), the training loop that runs them in a
//! worker, and the events it reports to the CLI and the GUI.

pub mod cli;
pub mod config;
pub mod engine;
pub mod events;
pub mod methods;

pub use methods::{KlDirection, KlImpl, LossParts, Method, MethodParams, StepBatches, StepContext};
