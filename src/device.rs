//! Device choice in one place: CUDA (when compiled in and usable) → a wgpu GPU → CPU (ndarray),
//! overridable with `--device`. Every engine entry point is generic over the backend and is run
//! through [`DeviceChoice::run`], which picks the concrete Burn backend.

use std::fmt;

use burn::backend::wgpu::WgpuDevice;
use burn::tensor::backend::Backend;

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
            ["wgpu", "discrete", i] => Ok(DeviceChoice::Wgpu(WgpuDevice::DiscreteGpu(index(i)?))),
            ["wgpu", "integrated", i] => {
                Ok(DeviceChoice::Wgpu(WgpuDevice::IntegratedGpu(index(i)?)))
            }
            ["wgpu", "virtual", i] => Ok(DeviceChoice::Wgpu(WgpuDevice::VirtualGpu(index(i)?))),
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

    /// Runs a backend-generic task on the concrete backend of this device.
    pub fn run<T: BackendTask>(&self, task: T) -> T::Output {
        match self {
            DeviceChoice::Cpu => task.run::<CpuBackend>(&Default::default()),
            DeviceChoice::Wgpu(d) => task.run::<WgpuBackend>(d),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(i) => {
                task.run::<CudaBackend>(&burn::backend::cuda::CudaDevice::new(*i))
            }
        }
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
            DeviceChoice::Cuda(_) => MemoryBudget::unlimited(&self.to_string()),
        }
    }
}

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
    #[cfg(not(feature = "cuda"))]
    {
        Some("this build has no CUDA support (rebuild with --features cuda)".into())
    }
    #[cfg(feature = "cuda")]
    {
        crate::device::cuda_probe::unavailable_reason()
    }
}

#[cfg(feature = "cuda")]
mod cuda_probe {
    /// Checks the three things cubecl-cuda needs before it is touched (it panics without them):
    /// the driver library, NVRTC, and the CUDA headers.
    pub fn unavailable_reason() -> Option<String> {
        let lib_dirs = [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/local/cuda/lib64",
            "/usr/local/nvidia/lib64",
            "/usr/lib",
        ];
        let find = |prefix: &str| {
            let mut dirs: Vec<std::path::PathBuf> = lib_dirs.iter().map(Into::into).collect();
            if let Ok(p) = std::env::var("LD_LIBRARY_PATH") {
                dirs.extend(p.split(':').filter(|s| !s.is_empty()).map(Into::into));
            }
            dirs.iter().any(|d| {
                std::fs::read_dir(d)
                    .map(|rd| {
                        rd.flatten()
                            .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
                    })
                    .unwrap_or(false)
            })
        };
        if !find("libcuda.so") {
            return Some("no NVIDIA driver library (libcuda.so) found".into());
        }
        if !find("libnvrtc.so") {
            return Some("no NVRTC library (libnvrtc.so) found".into());
        }
        let cuda_path = std::env::var("CUDA_PATH").unwrap_or_else(|_| "/usr/local/cuda".into());
        if !std::path::Path::new(&cuda_path)
            .join("include/cuda.h")
            .exists()
        {
            return Some(format!(
                "no CUDA headers at {cuda_path}/include (set CUDA_PATH)"
            ));
        }
        None
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
    if cuda_unavailable_reason().is_none() {
        out.push((DeviceChoice::Cuda(0), "CUDA 0".to_string()));
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

/// `MemAvailable` from /proc/meminfo (Linux); `None` elsewhere.
pub fn host_available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
