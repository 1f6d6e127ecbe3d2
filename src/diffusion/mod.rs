//! Masked-diffusion training pieces shared by fine-tuning and unlearning (mdlm.md §2, §3.7, §4.1):
//! the forward noising process, the per-position loss weights, the masked cross-entropy with
//! dllm's "token" normalisation, and the samplers' transfer schedules.

pub mod batch;
pub mod likelihood;
pub mod loss;
pub mod noise;
pub mod sampler;
pub mod schedule;
