//! Where CubeCL keeps what it learns about a device: tuning results (every backend) and compiled
//! kernels (CUDA's PTX; the wgpu backend we build compiles WGSL through the driver each process
//! and has no such cache: cubecl-wgpu 0.10 persists compiled shaders only for its SPIR-V path).
//!
//! CubeCL's default puts the tuning cache in the `target/` folder of the nearest `Cargo.toml`
//! above the working directory (or the working directory's own `target/`), and keeps no PTX
//! cache at all, so every process compiled and tuned everything again.

use std::path::PathBuf;

use cubecl::config::cache::CacheConfig;
use cubecl::config::compilation::CompilationLogLevel;
use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// The folder CubeCL's caches live in: `MDU_KERNEL_CACHE` if set, else
/// `<user cache dir>/mdu-workbench/kernels` (`$XDG_CACHE_HOME` or `~/.cache` on Linux).
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("MDU_KERNEL_CACHE") {
        Some(dir) if !dir.is_empty() => Some(dir.into()),
        _ => dirs::cache_dir().map(|d| d.join("mdu-workbench").join("kernels")),
    }
}

/// Whether a backend keeps compiled kernels across processes (else only tuning results persist).
pub fn keeps_compiled_kernels(device_label: &str) -> bool {
    device_label.starts_with("cuda")
}

/// Installs CubeCL's configuration: a `cubecl.toml` / `burn.toml` found above the working
/// directory and CubeCL's environment variables (`CUBECL_AUTOTUNE_LEVEL`, `CUBECL_DEBUG_LOG`) still
/// apply; the cache locations are ours, and compilations are reported to [`super::activity`].
pub(super) fn configure() {
    // CubeCL panics on a malformed cubecl.toml; the user gets CubeCL's defaults and one line.
    let found = super::catch(|| CubeClRuntimeConfig::from_current_dir().override_from_env());
    let mut config = found.unwrap_or_else(|err| {
        eprintln!("note: ignoring CubeCL's configuration file: {err}");
        CubeClRuntimeConfig::default().override_from_env()
    });
    if let Some(dir) = cache_dir() {
        config.autotune.cache = CacheConfig::File(dir.clone());
        config.compilation.cache = Some(CacheConfig::File(dir));
    }
    // "[Compiling kernel] name" lines (the basic level), forwarded to the `log` crate, are how the
    // activity counter sees a compilation; a level the user asked for is kept.
    if matches!(
        config.compilation.logger.level,
        CompilationLogLevel::Disabled
    ) {
        config.compilation.logger.level = CompilationLogLevel::Basic;
    }
    config.compilation.logger.log = Some(Default::default()); // the `log` crate at info level
    config.autotune.logger.log = Some(Default::default());
    // Fails only if a device was used before `init`: CubeCL keeps the configuration it read then.
    if super::catch(|| CubeClRuntimeConfig::set(config)).is_err() {
        eprintln!("note: CubeCL was configured before mdu could set its kernel cache");
    }
}
