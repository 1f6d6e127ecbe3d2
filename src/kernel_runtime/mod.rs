//! CubeCL's process-wide runtime for the GPU backends (CUDA and wgpu), set up once when `mdu`
//! starts, before any device is touched:
//!
//! - [`cache`]: tuning results, and on CUDA compiled PTX, persist in the user's cache directory
//!   (`~/.cache/mdu-workbench/kernels`, or `MDU_KERNEL_CACHE`), never in the working directory or
//!   a `target/` that happens to be above it (CubeCL's default), so a second process on the same
//!   device tunes nothing again (and on CUDA compiles nothing again).
//! - [`activity`]: counts kernel compilations and autotune runs as CubeCL reports them (through the
//!   `log` crate), so the CLI and the window can say "preparing GPU kernels: 37 compiled" while a
//!   first step waits on them, and benchmarks can tell compile time from step time.
//! - [`panics`]: a panic on a device's server thread (an autotune candidate or fusion path that
//!   fails; CubeCL catches it and drops that candidate) becomes one line, not a backtrace; a panic
//!   inside [`catch`] (an engine run) becomes an error message that ends the job.

pub mod activity;
pub mod cache;
pub mod panics;

pub use activity::{listen, snapshot, KernelActivity, Listening};
pub use panics::catch;

/// Sets up the cache, the activity counters and the panic policy. Call once, first thing in the
/// process (CubeCL reads its configuration at the first use of any device); later calls do nothing.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        started();
        panics::install();
        activity::install();
        cache::configure();
    });
}

/// When this process started using the runtime (the first call of [`init`] or of this function):
/// the zero of "time to first step".
pub fn started() -> std::time::Instant {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}
