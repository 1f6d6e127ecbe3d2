//! Plain answers about models and devices, as the window shows them.

use crate::checkpoint::{estimate_bytes, ModelFiles};

/// What the setup panel shows about a model folder.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub architecture: String,
    pub parameters: u64,
    pub dtype: String,
    pub vocab: usize,
    /// Weights and one forward pass in f32 (what training on the CPU or wgpu needs).
    pub bytes_f32: u64,
}

impl ModelInfo {
    pub fn of(files: &ModelFiles) -> Self {
        let c = &files.checkpoint.config;
        Self {
            architecture: c.architecture.name().to_string(),
            parameters: c.num_parameters(),
            dtype: files.checkpoint.layout.main_dtype().name().to_string(),
            vocab: c.vocab_size,
            bytes_f32: estimate_bytes(c, 4),
        }
    }
}

/// The label of the `auto` device choice.
pub const AUTO_DEVICE: &str = "Automatic (CUDA, else a GPU, else the CPU)";

/// The device picker's choices as (value for `--device`, label), and why CUDA is not among them.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceList {
    pub devices: Vec<(String, String)>,
    pub cuda_unavailable: Option<String>,
}

impl DeviceList {
    /// Probes the backends (CUDA, wgpu adapters); `auto` first.
    pub fn probe() -> Self {
        let devices = std::iter::once(("auto".to_string(), AUTO_DEVICE.to_string()))
            .chain(
                crate::device::list_devices()
                    .into_iter()
                    .map(|(d, label)| (d.to_string(), label)),
            )
            .collect();
        Self {
            devices,
            cuda_unavailable: crate::device::cuda_unavailable_reason(),
        }
    }

    /// What the picker offers before the probe has answered.
    pub fn before_probe() -> Self {
        Self {
            devices: vec![
                ("auto".into(), AUTO_DEVICE.into()),
                ("cpu".into(), "CPU (ndarray)".into()),
            ],
            cuda_unavailable: None,
        }
    }
}
