//! The masked-diffusion language model: one bidirectional transformer (`transformer.rs`, with the
//! routed experts in `moe.rs` and RoPE in `rope.rs`) that every architecture builds from its own HF
//! config and tensor names (`llada.rs`, `dream.rs`, `qwen3.rs`, `llada_moe.rs`). `family.rs` decides
//! which architecture a `config.json` describes; the dispatch on it is here, so that `config.rs`
//! stays independent of the architecture files.

pub mod checkpointing;
pub mod config;
pub mod dream;
pub mod family;
pub mod init;
pub mod layers;
pub mod llada;
pub mod llada_moe;
pub mod lora;
pub mod moe;
pub mod precision;
pub mod qwen3;
pub mod rope;
pub mod transformer;

use std::path::Path;

pub use checkpointing::loss_and_gradients;
pub use config::{Architecture, ConfigError, ModelConfig};
pub use lora::{Adapters, LoraSettings, LoraTarget};
pub use transformer::MaskedDiffusionLm;

/// The HF `config.json` of each architecture, read and written by its own file.
impl ModelConfig {
    /// Reads `config.json` in a checkpoint folder; `family.rs` decides which architecture reads it.
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
        let config = match family::architecture_of(json, file)? {
            Architecture::Llada => llada::config_from_hf(&keys)?,
            Architecture::Dream => dream::config_from_hf(&keys)?,
            Architecture::Qwen3A2d => qwen3::config_from_hf(&keys)?,
            Architecture::LladaMoe => llada_moe::config_from_hf(&keys)?,
        };
        config.validate(file)?;
        Ok(config)
    }

    /// The config in its architecture's HF `config.json` form (for models created here).
    pub fn to_hf_json(&self) -> serde_json::Value {
        match self.architecture {
            Architecture::Llada => llada::config_to_hf(self),
            Architecture::Dream => dream::config_to_hf(self),
            Architecture::Qwen3A2d => qwen3::config_to_hf(self),
            Architecture::LladaMoe => llada_moe::config_to_hf(self),
        }
    }
}

/// Every weight a block or the model can hold, independent of the on-disk naming scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Per-head RMSNorm weights on q and k (`[head_dim]`).
    QNorm,
    KNorm,
    MlpNorm,
    /// The dense MLP (every layer of a dense model; the dense layers of an MoE model).
    Gate,
    Up,
    Down,
    /// The MoE router `[experts, hidden]` and its bias buffer `[experts]`.
    Router,
    ExpertBias,
    /// Routed expert `e`'s SwiGLU projections.
    ExpertGate(usize),
    ExpertUp(usize),
    ExpertDown(usize),
    /// The shared expert's SwiGLU projections.
    SharedGate,
    SharedUp,
    SharedDown,
}

impl Weight {
    /// Shape in the HF (PyTorch) layout: `nn.Linear` weights are `[out, in]`.
    pub fn shape(self, c: &ModelConfig) -> Vec<usize> {
        let (d, f, v, kv) = (c.hidden_size, c.intermediate_size, c.vocab_size, c.kv_dim());
        let q = c.num_heads * c.head_dim;
        let experts = c.moe.as_ref().map_or(0, |m| m.num_experts);
        let fe = c.moe.as_ref().map_or(0, |m| m.expert_intermediate_size);
        let fs = c
            .moe
            .as_ref()
            .and_then(|m| m.shared_intermediate_size)
            .unwrap_or(0);
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
            Weight::QNorm | Weight::KNorm => vec![c.head_dim],
            Weight::Router => vec![experts, d],
            Weight::ExpertBias => vec![experts],
            Weight::ExpertGate(_) | Weight::ExpertUp(_) => vec![fe, d],
            Weight::ExpertDown(_) => vec![d, fe],
            Weight::SharedGate | Weight::SharedUp => vec![fs, d],
            Weight::SharedDown => vec![d, fs],
        }
    }

    /// A 1-D weight (norms, biases, the expert bias buffer).
    pub fn is_vector(self) -> bool {
        matches!(
            self,
            Weight::FinalNorm
                | Weight::AttnNorm
                | Weight::MlpNorm
                | Weight::QBias
                | Weight::KBias
                | Weight::VBias
                | Weight::QNorm
                | Weight::KNorm
                | Weight::ExpertBias
        )
    }

    /// The checkpoint name of this weight in `layer`, or `None` if the architecture lacks it.
    pub fn name(self, c: &ModelConfig, layer: usize) -> Option<String> {
        match c.architecture {
            Architecture::Llada => llada::tensor_name(self, layer),
            Architecture::Dream => dream::tensor_name(self, layer),
            Architecture::Qwen3A2d => qwen3::tensor_name(self, layer, c),
            Architecture::LladaMoe => llada_moe::tensor_name(self, layer),
        }
    }
}

/// The transformers (Qwen2/Qwen3/OLMoE-style) name of a dense-layout weight, which Dream, Qwen3
/// A2D and LLaDA-MoE share; each architecture file drops what it lacks and adds its own.
fn transformers_name(weight: Weight, layer: usize) -> Option<String> {
    let layer_w = |leaf: &str| Some(format!("model.layers.{layer}.{leaf}"));
    match weight {
        Weight::Embed => Some("model.embed_tokens.weight".into()),
        Weight::FinalNorm => Some("model.norm.weight".into()),
        Weight::LmHead => Some("lm_head.weight".into()),
        Weight::AttnNorm => layer_w("input_layernorm.weight"),
        Weight::Q => layer_w("self_attn.q_proj.weight"),
        Weight::K => layer_w("self_attn.k_proj.weight"),
        Weight::V => layer_w("self_attn.v_proj.weight"),
        Weight::QBias => layer_w("self_attn.q_proj.bias"),
        Weight::KBias => layer_w("self_attn.k_proj.bias"),
        Weight::VBias => layer_w("self_attn.v_proj.bias"),
        Weight::O => layer_w("self_attn.o_proj.weight"),
        Weight::QNorm => layer_w("self_attn.q_norm.weight"),
        Weight::KNorm => layer_w("self_attn.k_norm.weight"),
        Weight::MlpNorm => layer_w("post_attention_layernorm.weight"),
        Weight::Gate => layer_w("mlp.gate_proj.weight"),
        Weight::Up => layer_w("mlp.up_proj.weight"),
        Weight::Down => layer_w("mlp.down_proj.weight"),
        _ => None,
    }
}

/// The weights block `layer` holds under `c`, in checkpoint order (a name may still be `None`
/// where the architecture stores no such tensor).
pub fn block_weights(c: &ModelConfig, layer: usize) -> Vec<Weight> {
    let mut out = vec![Weight::AttnNorm, Weight::Q, Weight::K, Weight::V];
    if c.qkv_bias {
        out.extend([Weight::QBias, Weight::KBias, Weight::VBias]);
    }
    if c.qk_norm {
        out.extend([Weight::QNorm, Weight::KNorm]);
    }
    out.extend([Weight::O, Weight::MlpNorm]);
    match c.moe.as_ref().filter(|_| c.is_moe_layer(layer)) {
        None => out.extend([Weight::Gate, Weight::Up, Weight::Down]),
        Some(m) => {
            out.push(Weight::Router);
            if m.expert_bias {
                out.push(Weight::ExpertBias);
            }
            for e in 0..m.num_experts {
                out.extend([
                    Weight::ExpertGate(e),
                    Weight::ExpertUp(e),
                    Weight::ExpertDown(e),
                ]);
            }
            if m.shared_intermediate_size.is_some() {
                out.extend([Weight::SharedGate, Weight::SharedUp, Weight::SharedDown]);
            }
        }
    }
    out
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
        for w in block_weights(c, layer) {
            push(w, layer);
        }
    }
    push(Weight::FinalNorm, 0);
    push(Weight::LmHead, 0);
    out
}
