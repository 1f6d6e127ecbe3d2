//! Device choice in one place: CUDA (when compiled in and usable) → a wgpu GPU → CPU (ndarray),
//! overridable with `--device`. Every engine entry point is generic over the backend and is run
//! through [`DeviceChoice::run`], which picks the concrete Burn backend.

use std::fmt;

use std::sync::OnceLock;

use burn::backend::wgpu::WgpuDevice;
use burn::tensor::backend::Backend;
use burn::tensor::{get_device_settings, set_default_dtypes, DType, Element, FloatDType};

use crate::checkpoint::MemoryBudget;
use crate::kernels::KlBackend;

/// CPU backend (the `cpu` feature of burn downloads LLVM at build time, so ndarray it is).
pub type CpuBackend = burn::backend::NdArray<f32>;
/// wgpu backend with fusion (custom kernels also implement the Fusion wrapper).
pub type WgpuBackend = burn::backend::Wgpu<f32, i32, u32>;
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<f32, i32>;

#[derive(Clone, Debug, PartialEq)]
pub enum DeviceChoice {
    Cpu,
    Wgpu(WgpuDevice),
    #[cfg(feature = "cuda")]
    Cuda(usize),
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Wgpu(WgpuDevice::DefaultDevice) => write!(f, "wgpu"),
            DeviceChoice::Wgpu(WgpuDevice::Cpu) => write!(f, "wgpu:cpu"),
            DeviceChoice::Wgpu(WgpuDevice::DiscreteGpu(i)) => write!(f, "wgpu:discrete:{i}"),
            DeviceChoice::Wgpu(WgpuDevice::IntegratedGpu(i)) => write!(f, "wgpu:integrated:{i}"),
            DeviceChoice::Wgpu(WgpuDevice::VirtualGpu(i)) => write!(f, "wgpu:virtual:{i}"),
            DeviceChoice::Wgpu(other) => write!(f, "wgpu:{other:?}"),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Help text for `--device`, including why CUDA is not offered when it is not.
pub fn device_help() -> String {
    let cuda = match cuda_unavailable_reason() {
        None => "cuda[:N] (NVIDIA), ".to_string(),
        Some(why) => format!("(cuda unavailable: {why}), "),
    };
    format!("auto (CUDA → wgpu GPU → CPU), {cuda}wgpu (default adapter), wgpu:cpu (software Vulkan, e.g. lavapipe), wgpu:discrete:N, wgpu:integrated:N, cpu (ndarray)")
}

impl DeviceChoice {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().to_ascii_lowercase();
        let index = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("device {text:?}: {s:?} is not an index"))
        };
        let parts: Vec<&str> = t.split(':').collect();
        match parts.as_slice() {
            ["auto"] => Ok(auto_device()),
            ["cpu"] | ["ndarray"] => Ok(DeviceChoice::Cpu),
            ["wgpu"] => Ok(DeviceChoice::Wgpu(WgpuDevice::DefaultDevice)),
            ["wgpu", "cpu"] => Ok(DeviceChoice::Wgpu(WgpuDevice::Cpu)),
            ["wgpu", kind @ ("discrete" | "integrated" | "virtual"), i] => {
                let i = index(i)?;
                let device = match *kind {
                    "discrete" => WgpuDevice::DiscreteGpu(i),
                    "integrated" => WgpuDevice::IntegratedGpu(i),
                    _ => WgpuDevice::VirtualGpu(i),
                };
                // cubecl-wgpu panics on an adapter that is not there: say so here instead.
                let adapters = list_wgpu_adapters();
                if !adapters.iter().any(|a| a.device == device) {
                    let found: Vec<String> = adapters
                        .iter()
                        .map(|a| format!("{} ({})", DeviceChoice::Wgpu(a.device.clone()), a.name))
                        .collect();
                    return Err(format!(
                        "device {text:?}: this machine has no such wgpu adapter (found: {})",
                        if found.is_empty() {
                            "none".to_string()
                        } else {
                            found.join(", ")
                        }
                    ));
                }
                Ok(DeviceChoice::Wgpu(device))
            }
            ["cuda", rest @ ..] => {
                if let Some(why) = cuda_unavailable_reason() {
                    return Err(format!("device {text:?}: CUDA is unavailable: {why}"));
                }
                #[cfg(feature = "cuda")]
                {
                    let i = match rest {
                        [] => 0,
                        [i] => index(i)?,
                        _ => return Err(format!("device {text:?}: expected cuda or cuda:N")),
                    };
                    let count = cuda_devices().map_or(0, |d| d.len());
                    if i >= count {
                        return Err(format!(
                            "device {text:?}: this machine has {count} CUDA device(s)"
                        ));
                    }
                    Ok(DeviceChoice::Cuda(i))
                }
                #[cfg(not(feature = "cuda"))]
                {
                    let _ = rest;
                    unreachable!("cuda_unavailable_reason is always Some without the cuda feature")
                }
            }
            _ => Err(format!(
                "unknown device {text:?}; expected one of: {}",
                device_help()
            )),
        }
    }

    /// Runs a backend-generic task on the concrete backend of this device, in the device's
    /// [`Precision`] (set before the task creates its first tensor there).
    pub fn run<T: BackendTask>(&self, task: T) -> T::Output {
        let wanted = self.precision();
        match self {
            DeviceChoice::Cpu => task.run::<CpuBackend>(&Default::default()),
            DeviceChoice::Wgpu(d) => {
                apply_precision::<WgpuBackend>(d, wanted);
                task.run::<WgpuBackend>(d)
            }
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(i) => {
                let device = burn::backend::cuda::CudaDevice::new(*i);
                apply_precision::<CudaBackend>(&device, wanted);
                task.run::<CudaBackend>(&device)
            }
        }
    }

    /// The float storage this device's runs use: `--precision` where given, else bf16 on CUDA and
    /// f32 elsewhere (wgpu adapters rarely support bf16; ndarray computes in f32 only).
    pub fn precision(&self) -> Precision {
        if let Some(p) = PRECISION_OVERRIDE.get() {
            return if *self == DeviceChoice::Cpu {
                Precision::F32
            } else {
                *p
            };
        }
        match self {
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(_) => Precision::Bf16,
            _ => Precision::F32,
        }
    }

    /// The precision runs on this device actually get: [`Self::precision`], or the fallback the
    /// device forced (see [`apply_precision`]).
    pub fn effective_precision(&self) -> Precision {
        struct Probe;
        impl BackendTask for Probe {
            type Output = Precision;
            fn run<B: EngineBackend>(self, device: &B::Device) -> Precision {
                storage_precision::<B>(device)
            }
        }
        self.run(Probe)
    }

    /// Whether the device can hold bf16 tensors (bf16 AdamW moments save memory only there).
    pub fn stores_bf16(&self) -> bool {
        struct Probe;
        impl BackendTask for Probe {
            type Output = bool;
            fn run<B: EngineBackend>(self, device: &B::Device) -> bool {
                crate::model::precision::stores_bf16::<B>(device)
            }
        }
        self.run(Probe)
    }

    /// What the device can hold, for the pre-load memory check.
    pub fn memory_budget(&self) -> MemoryBudget {
        let host = || MemoryBudget {
            device: self.to_string(),
            available: host_available_memory(),
            max_buffer: None,
        };
        match self {
            DeviceChoice::Cpu => host(),
            DeviceChoice::Wgpu(d) => {
                let adapter = list_wgpu_adapters()
                    .into_iter()
                    .find(|a| &a.device == d || (*d == WgpuDevice::DefaultDevice));
                let mut budget = match adapter.as_ref().map(|a| a.is_software) {
                    Some(true) => host(),
                    _ => MemoryBudget::unlimited(&self.to_string()),
                };
                budget.max_buffer = adapter.map(|a| a.max_buffer);
                budget
            }
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(i) => MemoryBudget {
                available: cuda_probe::total_memory(*i),
                ..MemoryBudget::unlimited(&self.to_string())
            },
        }
    }
}

/// How weights and activations are stored. Whatever it is, softmax, log-softmax, the KL, the
/// losses, RMSNorm, RoPE, gradient norms and the optimizer's moments are computed in f32
/// (`model::precision::at_least_f32`, `train::moments`, f32 unless bf16 moments are asked for); matrix products accumulate in f32 on
/// every backend we run.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Bf16,
    F16,
}

impl Precision {
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }

    pub fn of(dtype: DType) -> Self {
        match dtype {
            DType::BF16 => Precision::Bf16,
            DType::F16 => Precision::F16,
            _ => Precision::F32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }
}

static PRECISION_OVERRIDE: OnceLock<Precision> = OnceLock::new();

/// `--precision`: the storage for every GPU device of this process (the CPU stays f32). Burn fixes
/// a device's default float type at its first tensor, so this is set once, before any run.
pub fn set_precision(precision: Precision) {
    let _ = PRECISION_OVERRIDE.set(precision);
}

/// Makes `wanted` the default float type of `device`, falling back bf16 → f16 → f32 to what the
/// device supports. A device already in use keeps the type it has (Burn fixes it at the first
/// tensor); either way a run is told once on stderr when it does not get what it asked for.
fn apply_precision<B: Backend>(device: &B::Device, wanted: Precision) {
    let order = [Precision::Bf16, Precision::F16, Precision::F32];
    let start = order.iter().position(|p| *p == wanted).unwrap_or(2);
    if let Some(p) = order[start..]
        .iter()
        .find(|p| B::supports_dtype(device, p.dtype().into()))
    {
        // Err(AlreadyInitialized) when the device is in use: it keeps its type.
        let _ = set_default_dtypes::<B>(device, p.dtype(), B::IntElem::dtype());
    }
    let got = storage_precision::<B>(device);
    if got != wanted {
        static TOLD: OnceLock<()> = OnceLock::new();
        TOLD.get_or_init(|| {
            eprintln!(
                "note: {wanted:?} storage is not available on {device:?}; running in {}",
                got.name()
            )
        });
    }
}

/// The float type `device` creates tensors in (fixed by Burn at the device's first tensor).
pub fn storage_precision<B: Backend>(device: &B::Device) -> Precision {
    Precision::of(get_device_settings::<B>(device).float_dtype.into())
}

pub use crate::kernel_runtime::panics::panic_message;

/// What every backend the engine runs on provides: Burn's `Backend` plus the custom-kernel
/// extensions (each with a tensor-op fallback, so every Burn backend can implement them).
pub trait EngineBackend: Backend + KlBackend {}

impl<B: Backend + KlBackend> EngineBackend for B {}

/// A computation that can run on any Burn backend.
pub trait BackendTask {
    type Output;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output;
}

/// CUDA → a wgpu GPU → CPU. A software wgpu adapter (lavapipe) is not chosen automatically.
pub fn auto_device() -> DeviceChoice {
    #[cfg(feature = "cuda")]
    if cuda_unavailable_reason().is_none() {
        return DeviceChoice::Cuda(0);
    }
    match list_wgpu_adapters().into_iter().find(|a| !a.is_software) {
        Some(adapter) => DeviceChoice::Wgpu(adapter.device),
        None => DeviceChoice::Cpu,
    }
}

/// `None` when CUDA can be used; otherwise the reason, for the device picker and `--device` help.
pub fn cuda_unavailable_reason() -> Option<String> {
    cuda_devices().err()
}

/// What the CUDA probe found: the devices' names, or why CUDA cannot be used.
pub fn cuda_devices() -> Result<Vec<String>, String> {
    #[cfg(not(feature = "cuda"))]
    {
        Err("this build has no CUDA support (rebuild with --features cuda)".into())
    }
    #[cfg(feature = "cuda")]
    {
        static PROBE: std::sync::OnceLock<Result<Vec<String>, String>> = std::sync::OnceLock::new();
        PROBE
            .get_or_init(|| {
                // cudarc panics on a library without the symbols it expects; the probe must never
                // take the app down, nor print a panic trace for what is only "no CUDA here".
                crate::kernel_runtime::catch(cuda_probe::probe)
                    .unwrap_or_else(|panic| Err(format!("the CUDA probe failed: {panic}")))
            })
            .clone()
    }
}

#[cfg(feature = "cuda")]
mod cuda_probe {
    use cudarc::driver::result as driver;

    /// Checks, in the order cubecl-cuda needs them and without touching cubecl (which panics when
    /// one is missing): the driver library (the same names cudarc loads), NVRTC, the CUDA headers
    /// (the include folder cubecl passes to NVRTC), then `cuInit` and at least one device.
    pub fn probe() -> Result<Vec<String>, String> {
        let searched = |lib: &str| {
            let names = cudarc::get_lib_name_candidates(lib);
            match (names.first(), names.last()) {
                (Some(a), Some(b)) if names.len() > 2 => {
                    format!("{a}, {b} and {} other names", names.len() - 2)
                }
                _ => names.join(", "),
            }
        };
        // SAFETY: these only try to dlopen the candidate library names.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(format!(
                "no NVIDIA driver library could be loaded (searched {}; is the NVIDIA driver installed?)",
                searched("cuda")
            ));
        }
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(format!(
                "no NVRTC library could be loaded (searched {}; install the CUDA toolkit's NVRTC or add its lib folder to LD_LIBRARY_PATH)",
                searched("nvrtc")
            ));
        }
        let include = cuda_path()
            .ok_or(
                "no CUDA installation found (set CUDA_PATH; looked at /usr/local/cuda, /opt/cuda)",
            )?
            .join("include");
        if !include.join("cuda_fp16.h").exists() {
            return Err(format!(
                "no CUDA headers at {} (cuda_fp16.h is missing; set CUDA_PATH to the toolkit)",
                include.display()
            ));
        }
        driver::init().map_err(|e| format!("the NVIDIA driver did not start (cuInit: {e:?})"))?;
        let count = driver::device::get_count()
            .map_err(|e| format!("the NVIDIA driver could not count devices ({e:?})"))?;
        if count < 1 {
            return Err("the NVIDIA driver reports no CUDA device".into());
        }
        Ok((0..count)
            .map(|i| {
                driver::device::get(i)
                    .and_then(driver::device::get_name)
                    .unwrap_or_else(|_| format!("CUDA device {i}"))
            })
            .collect())
    }

    /// Device `index`'s memory in bytes (after a successful probe).
    pub fn total_memory(index: usize) -> Option<u64> {
        super::cuda_devices().ok()?;
        let device = driver::device::get(index as i32).ok()?;
        // SAFETY: `device` is a valid handle from cuDeviceGet after cuInit.
        unsafe { driver::device::total_mem(device) }
            .ok()
            .map(|b| b as u64)
    }

    /// The toolkit folder, found as cubecl-cuda 0.10 finds it (`cubecl_cuda::install::cuda_path`).
    fn cuda_path() -> Option<std::path::PathBuf> {
        if let Ok(path) = std::env::var("CUDA_PATH") {
            return Some(path.into());
        }
        ["/usr/local/cuda", "/opt/cuda"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
            .or_else(|| {
                std::path::Path::new("/usr/bin/nvcc")
                    .exists()
                    .then(|| "/usr".into())
            })
    }
}

/// One wgpu adapter as cubecl-wgpu would address it.
#[derive(Clone, Debug)]
pub struct WgpuAdapter {
    pub device: WgpuDevice,
    pub name: String,
    pub backend: String,
    pub is_software: bool,
    /// Largest single storage buffer (bytes).
    pub max_buffer: u64,
}

/// Lists Vulkan/Metal/DX12 adapters (what cubecl-wgpu's automatic API uses), numbered per type.
pub fn list_wgpu_adapters() -> Vec<WgpuAdapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let mut counts = [0usize; 3];
    let mut out = Vec::new();
    for adapter in adapters {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let next = |slot: usize, counts: &mut [usize; 3]| {
            counts[slot] += 1;
            counts[slot] - 1
        };
        let device = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => WgpuDevice::DiscreteGpu(next(0, &mut counts)),
            wgpu::DeviceType::IntegratedGpu => WgpuDevice::IntegratedGpu(next(1, &mut counts)),
            wgpu::DeviceType::VirtualGpu => WgpuDevice::VirtualGpu(next(2, &mut counts)),
            wgpu::DeviceType::Cpu => WgpuDevice::Cpu,
            wgpu::DeviceType::Other => continue,
        };
        out.push(WgpuAdapter {
            is_software: info.device_type == wgpu::DeviceType::Cpu,
            device,
            name: info.name,
            backend: format!("{:?}", info.backend),
            max_buffer: (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size),
        });
    }
    out
}

/// Every device this machine offers, with a label for pickers.
pub fn list_devices() -> Vec<(DeviceChoice, String)> {
    let mut out = Vec::new();
    #[cfg(feature = "cuda")]
    for (i, name) in cuda_devices().unwrap_or_default().into_iter().enumerate() {
        out.push((DeviceChoice::Cuda(i), format!("CUDA {i}: {name}")));
    }
    for a in list_wgpu_adapters() {
        let kind = if a.is_software { "software" } else { "GPU" };
        out.push((
            DeviceChoice::Wgpu(a.device.clone()),
            format!("wgpu {kind}: {} ({})", a.name, a.backend),
        ));
    }
    out.push((DeviceChoice::Cpu, "CPU (ndarray)".to_string()));
    out
}

/// Gives the process a private `XDG_RUNTIME_DIR` when it has none (a plain shell, ssh, a service):
/// without it libwayland, probed by the Vulkan driver while wgpu lists adapters, prints "error:
/// XDG_RUNTIME_DIR is invalid or not set in the environment." for what is not an error at all.
/// Call before any thread starts (it sets an environment variable).
pub fn prepare_process_environment() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let usable = |dir: &std::path::Path| {
            std::fs::metadata(dir).is_ok_and(|m| {
                m.is_dir()
                    && m.uid() == unsafe { libc::getuid() }
                    && m.permissions().mode() & 0o077 == 0
            })
        };
        if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| usable(std::path::Path::new(&d))) {
            return;
        }
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("mdu-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        if usable(&dir) {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

/// `MemAvailable` from /proc/meminfo (Linux); `None` elsewhere.
pub fn host_available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
