//! The masked-diffusion language model: one bidirectional transformer (`transformer.rs`) that both
//! architectures build from their own HF config and tensor names (`llada.rs`, `dream.rs`). The
//! dispatch on the architecture (config keys, tensor names) is here, so that `config.rs` stays
//! independent of the architecture files.

pub mod checkpointing;
pub mod config;
pub mod dream;
pub mod init;
pub mod llada;
pub mod lora;
pub mod precision;
pub mod transformer;

use std::path::Path;

pub use checkpointing::loss_and_gradients;
pub use config::{Architecture, ConfigError, ModelConfig};
pub use lora::{Adapters, LoraSettings, LoraTarget};
pub use transformer::MaskedDiffusionLm;

/// The HF `config.json` of each architecture, read and written by its own file.
impl ModelConfig {
    /// Reads `config.json` in a checkpoint folder and dispatches on `model_type`.
    pub fn from_dir(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join("config.json");
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ConfigError::Json {
                file: file.clone(),
                source,
            })?;
        Self::from_json(&json, &file)
    }

    pub fn from_json(json: &serde_json::Value, file: &str) -> Result<Self, ConfigError> {
        let keys = config::HfKeys::new(json, file);
        let model_type = keys.string("model_type")?;
        let config = match model_type.to_ascii_lowercase().as_str() {
            "llada" => llada::config_from_hf(&keys)?,
            "dream" => dream::config_from_hf(&keys)?,
            _ => {
                return Err(ConfigError::UnknownModelType {
                    file: file.to_string(),
                    found: model_type,
                })
            }
        };
        config.validate(file)?;
        Ok(config)
    }

    /// The config in its architecture's HF `config.json` form (for models created here).
    pub fn to_hf_json(&self) -> serde_json::Value {
        match self.architecture {
            Architecture::Llada => llada::config_to_hf(self),
            Architecture::Dream => dream::config_to_hf(self),
        }
    }
}

/// Every weight a block or the model can hold, independent of the on-disk naming scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    Embed,
    FinalNorm,
    LmHead,
    AttnNorm,
    Q,
    K,
    V,
    O,
    QBias,
    KBias,
    VBias,
    MlpNorm,
    Gate,
    Up,
    Down,
}

impl Weight {
    pub const MODEL: [Weight; 3] = [Weight::Embed, Weight::FinalNorm, Weight::LmHead];
    pub const BLOCK: [Weight; 12] = [
        Weight::AttnNorm,
        Weight::Q,
        Weight::K,
        Weight::V,
        Weight::QBias,
        Weight::KBias,
        Weight::VBias,
        Weight::O,
        Weight::MlpNorm,
        Weight::Gate,
        Weight::Up,
        Weight::Down,
    ];

    /// Shape in the HF (PyTorch) layout: `nn.Linear` weights are `[out, in]`.
    pub fn shape(self, c: &ModelConfig) -> Vec<usize> {
        let (d, f, v, kv) = (c.hidden_size, c.intermediate_size, c.vocab_size, c.kv_dim());
        let q = c.num_heads * c.head_dim;
        match self {
            Weight::Embed | Weight::LmHead => vec![v, d],
            Weight::FinalNorm | Weight::AttnNorm | Weight::MlpNorm => vec![d],
            Weight::Q => vec![q, d],
            Weight::K | Weight::V => vec![kv, d],
            Weight::QBias => vec![q],
            Weight::KBias | Weight::VBias => vec![kv],
            Weight::O => vec![d, q],
            Weight::Gate | Weight::Up => vec![f, d],
            Weight::Down => vec![d, f],
        }
    }

    /// The checkpoint name of this weight in `layer`, or `None` if the architecture lacks it.
    pub fn name(self, c: &ModelConfig, layer: usize) -> Option<String> {
        match c.architecture {
            Architecture::Llada => llada::tensor_name(self, layer),
            Architecture::Dream => dream::tensor_name(self, layer),
        }
    }
}

/// Every tensor a checkpoint of this config must contain, with its HF shape, in model order.
pub fn expected_tensors(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let mut push = |w: Weight, layer: usize| {
        if let Some(name) = w.name(c, layer) {
            out.push((name, w.shape(c)));
        }
    };
    push(Weight::Embed, 0);
    for layer in 0..c.num_layers {
        for w in Weight::BLOCK {
            push(w, layer);
        }
    }
    push(Weight::FinalNorm, 0);
    push(Weight::LmHead, 0);
    out
}
