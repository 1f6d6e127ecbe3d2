//! Custom device kernels, each registered as a Burn backend extension with an autodiff backward.
//! A kernel module owns its trait, its launch code and its tensor-op twin; callers keep their own
//! composite reference (e.g. `unlearn::methods::mdu::kl_rows`) and choose the path.
//!
//! - [`masked_kl`]: row-wise KL(softmax(x) ‖ softmax(y)) over the gathered masked answer positions,
//!   a WGSL kernel (`shaders/masked_kl.wgsl`, `shaders/masked_kl_backward.wgsl`) on wgpu.
//! - [`masked_kl::cube`]: the same kernel in CubeCL, for CUDA (which cannot run WGSL); its launches
//!   are runtime-generic, so tests run it on wgpu too.
//! - [`reference`]: the masked KL and its gradients in f64 on the host, what the kernels are held to.

pub mod masked_kl;
pub mod reference;

pub use masked_kl::{kl_divergence_rows, KlBackend, KlWrt};
