//! Inside the unlearning: the token-level KL trace along the denoising trajectory (`trace.rs`),
//! token roles (`roles.rs`) and the leakage probe (`leakage.rs`). Engine code: the window's
//! *Inside* view asks for these through the session and draws what comes back.

pub mod cli;
pub mod leakage;
pub mod roles;
pub mod trace;
