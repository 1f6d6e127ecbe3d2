//! Plain answers about models and devices, as the window shows them.

use std::path::{Path, PathBuf};

use crate::checkpoint::{estimate_bytes, ModelFiles};
use crate::model::ModelConfig;

/// What the setup panel shows about a model folder.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub architecture: String,
    pub parameters: u64,
    pub dtype: String,
    pub vocab: usize,
    /// Weights and one forward pass in f32 (what training on the CPU or wgpu needs).
    pub bytes_f32: u64,
    /// The model's shape, for the memory plan of a run.
    pub shape: ModelConfig,
    /// A LoRA adapter folder (merged on load).
    pub adapter: bool,
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
            shape: c.clone(),
            adapter: files.adapter.is_some(),
        }
    }
}

/// What a device offers a run: free memory when known, bytes per stored weight, and whether it
/// is the CPU (whose process counts too).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceMemory {
    pub available: Option<u64>,
    pub storage_bytes: u64,
    /// The device can store bf16 tensors (where bf16 AdamW moments halve their memory).
    pub bf16_storage: bool,
    pub on_cpu: bool,
}

impl DeviceMemory {
    /// `device` in `--device` syntax; an unknown one reads as nothing known.
    pub fn probe(device: &str) -> Option<Self> {
        let choice = crate::device::DeviceChoice::parse(device).ok()?;
        Some(Self {
            available: choice.memory_budget().available,
            storage_bytes: burn::tensor::DType::from(choice.effective_precision().dtype()).size()
                as u64,
            bf16_storage: choice.stores_bf16(),
            on_cpu: matches!(choice, crate::device::DeviceChoice::Cpu),
        })
    }
}

/// The longest training item of `files` in tokens (question and answer in the model's chat
/// template): the width of the widest batch a run makes.
pub fn longest_item(model: &Path, files: &[PathBuf]) -> Result<usize, String> {
    let opened = ModelFiles::open(model).map_err(|e| crate::events::error_message(&e))?;
    let mut longest = 0;
    for file in files {
        for item in crate::data::read_qa_file(file).map_err(|e| e.to_string())? {
            let example = crate::diffusion::batch::SftExample::encode(&opened.tokenizer, &item)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            longest = longest.max(example.prompt.len() + example.answer.len());
        }
    }
    Ok(longest)
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
