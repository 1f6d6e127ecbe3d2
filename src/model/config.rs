//! The resolved runtime configuration shared by every architecture, built from a checkpoint's own
//! HF `config.json` by the architecture files (`llada.rs`, `dream.rs`, `qwen3.rs`, `llada_moe.rs`;
//! `family.rs` decides which one reads a file).

use serde::Serialize;

/// Which HF layout a checkpoint follows. Decides tensor names, config keys and the logit shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Architecture {
    /// LLaDA (`model_type: "llada"`): MHA, no biases, untied head, no logit shift.
    Llada,
    /// Dream (`model_type: "Dream"`): Qwen2 layout, GQA, q/k/v bias, logits right-shifted by consumers.
    Dream,
    /// A Qwen3 model made bidirectional (dllm's A2D, `model_type: "a2d-qwen3"`): GQA, per-head q/k
    /// RMSNorm, an explicit head dimension, usually a tied head, no logit shift.
    Qwen3A2d,
    /// LLaDA-MoE (`LLaDAMoEModelLM`; its `config.json` says `"llada"`): q/k RMSNorm, partial RoPE,
    /// routed SwiGLU experts with a shared expert, no logit shift.
    LladaMoe,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llada => "LLaDA",
            Architecture::Dream => "Dream",
            Architecture::Qwen3A2d => "Qwen3 (A2D)",
            Architecture::LladaMoe => "LLaDA-MoE",
        }
    }

    /// The mask and end-of-turn token texts of the architecture's tokenizers.
    pub fn special_texts(self) -> (&'static str, &'static str) {
        match self {
            Architecture::Llada => ("<|mdm_mask|>", "<|eot_id|>"),
            Architecture::Dream | Architecture::Qwen3A2d => ("<|mask|>", "<|im_end|>"),
            Architecture::LladaMoe => ("<|mask|>", "<|role_end|>"),
        }
    }

    /// Dream predicts position i from the hidden state at i-1 (mdlm.md §3.4): consumers shift.
    pub fn shifts_logits(self) -> bool {
        matches!(self, Architecture::Dream)
    }
}

/// Everything the transformer needs, whatever the on-disk key names were.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    /// Rows of the embedding and of the LM head (may exceed the tokenizer's size).
    pub vocab_size: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    /// q/k/v projections carry a bias (Dream).
    pub qkv_bias: bool,
    /// Per-head RMSNorm on q and k before RoPE (Qwen3, LLaDA-MoE).
    pub qk_norm: bool,
    /// The LM head is the embedding matrix (no head tensor in the checkpoint).
    pub tied_embeddings: bool,
    /// Leading dimensions of each head that RoPE rotates (`head_dim` unless partial).
    pub rotary_dim: usize,
    /// q, k and v are clamped to ±this after their projections (LLaDA-MoE's `clip_qkv`).
    pub clip_qkv: Option<f64>,
    /// The mixture-of-experts layers (`None`: every MLP is dense).
    pub moe: Option<MoeConfig>,
    pub mask_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
}

/// The routed experts of a mixture-of-experts model (LLaDA-MoE, `moe.rs`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MoeConfig {
    pub num_experts: usize,
    /// Experts each token is routed to.
    pub top_k: usize,
    pub expert_intermediate_size: usize,
    /// The always-on shared expert's width (`None`: no shared expert).
    pub shared_intermediate_size: Option<usize>,
    /// Per layer: true where the MLP is the routed experts, false where it is dense.
    pub moe_layers: Vec<bool>,
    /// A per-expert bias buffer (`mlp.expert_bias`) added to the routing probabilities.
    pub expert_bias: bool,
}

impl ModelConfig {
    /// Whether layer `layer`'s MLP is the routed experts.
    pub fn is_moe_layer(&self, layer: usize) -> bool {
        self.moe
            .as_ref()
            .is_some_and(|m| m.moe_layers.get(layer).copied().unwrap_or(false))
    }
}

/// A config problem, always naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: not valid JSON: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("{file}: {found}, which is none of the supported layouts: {supported}")]
    UnknownModelType {
        file: String,
        found: String,
        supported: String,
    },
    #[error("{file}: key `{key}`: {problem}")]
    Key {
        file: String,
        key: String,
        problem: String,
    },
}

impl ModelConfig {
    /// A small LLaDA-architecture shape built here (demo, benchmarks): multi-head attention, no
    /// biases, RoPE θ 10000, 512 positions, the last two ids as mask and EOS/padding, no BOS.
    /// Callers change what differs with struct-update syntax.
    pub fn llada_shape(
        hidden: usize,
        layers: usize,
        heads: usize,
        mlp: usize,
        vocab: usize,
    ) -> Self {
        Self {
            architecture: Architecture::Llada,
            hidden_size: hidden,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: heads,
            head_dim: hidden / heads,
            intermediate_size: mlp,
            vocab_size: vocab,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 512,
            qkv_bias: false,
            qk_norm: false,
            tied_embeddings: false,
            rotary_dim: hidden / heads,
            clip_qkv: None,
            moe: None,
            mask_token_id: Some(vocab as u32 - 1),
            eos_token_id: Some(vocab as u32 - 2),
            pad_token_id: Some(vocab as u32 - 2),
            bos_token_id: None,
        }
    }

    /// Rejects shapes and ids the transformer cannot use.
    pub(super) fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, problem: String| {
            Err(ConfigError::Key {
                file: file.to_string(),
                key: key.to_string(),
                problem,
            })
        };
        if self.num_heads == 0 || self.hidden_size % self.num_heads != 0 {
            return bad(
                "num_heads",
                format!(
                    "{} heads do not divide hidden size {}",
                    self.num_heads, self.hidden_size
                ),
            );
        }
        if self.num_kv_heads == 0 || self.num_heads % self.num_kv_heads != 0 {
            return bad(
                "num_kv_heads",
                format!(
                    "{} kv heads do not divide {} query heads",
                    self.num_kv_heads, self.num_heads
                ),
            );
        }
        if self.head_dim % 2 != 0 {
            return bad(
                "head_dim",
                format!("RoPE needs an even head dimension, got {}", self.head_dim),
            );
        }
        if self.rotary_dim % 2 != 0 || self.rotary_dim == 0 || self.rotary_dim > self.head_dim {
            return bad(
                "partial_rotary_factor",
                format!(
                    "gives {} rotary dimensions; RoPE needs an even number in 2..={}",
                    self.rotary_dim, self.head_dim
                ),
            );
        }
        if let Some(m) = &self.moe {
            if m.top_k == 0 || m.top_k > m.num_experts {
                return bad(
                    "num_experts_per_tok",
                    format!("{} of {} experts", m.top_k, m.num_experts),
                );
            }
            if m.moe_layers.len() != self.num_layers {
                return bad(
                    "moe_layer_freq",
                    format!(
                        "has {} entries for {} layers",
                        m.moe_layers.len(),
                        self.num_layers
                    ),
                );
            }
        }
        for (key, id) in [
            ("mask_token_id", self.mask_token_id),
            ("eos_token_id", self.eos_token_id),
        ] {
            if let Some(id) = id {
                if id as usize >= self.vocab_size {
                    return bad(
                        key,
                        format!(
                            "id {id} is outside the vocabulary of {} rows",
                            self.vocab_size
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    pub fn kv_dim(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }

    /// Parameter count from the shapes (embedding, head, blocks, norms; every expert counts).
    pub fn num_parameters(&self) -> u64 {
        let (d, v) = (self.hidden_size as u64, self.vocab_size as u64);
        let head = if self.tied_embeddings { 0 } else { v * d };
        let blocks: u64 = (0..self.num_layers)
            .map(|layer| {
                super::block_weights(self, layer)
                    .into_iter()
                    .map(|w| w.shape(self).iter().product::<usize>() as u64)
                    .sum::<u64>()
            })
            .sum();
        v * d + head + blocks + d
    }

    /// Parameters one token passes through (the routed experts it is not sent to do not count).
    pub fn active_parameters(&self) -> u64 {
        let Some(m) = &self.moe else {
            return self.num_parameters();
        };
        let per_expert = 3 * self.hidden_size as u64 * m.expert_intermediate_size as u64;
        let idle = (m.num_experts - m.top_k.min(m.num_experts)) as u64 * per_expert;
        let moe_layers = m.moe_layers.iter().filter(|&&x| x).count() as u64;
        self.num_parameters() - moe_layers * idle
    }
}

/// Typed access to HF config keys with errors that name the file and the key.
pub struct HfKeys<'a> {
    json: &'a serde_json::Value,
    file: &'a str,
}

impl<'a> HfKeys<'a> {
    /// The keys of `json`, read from `file` (named in every error).
    pub(super) fn new(json: &'a serde_json::Value, file: &'a str) -> Self {
        Self { json, file }
    }

    /// An error naming the file and `key`.
    pub fn err(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            file: self.file.to_string(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.json.get(key).filter(|v| !v.is_null())
    }

    /// The value of a key that is present and not null.
    pub fn raw(&self, key: &str) -> Option<&serde_json::Value> {
        self.get(key)
    }

    pub fn string(&self, key: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.err(key, format!("expected a string, found {other}"))),
            None => Err(self.err(key, "missing")),
        }
    }

    pub fn usize(&self, key: &str) -> Result<usize, ConfigError> {
        self.opt_usize(key)?
            .ok_or_else(|| self.err(key, "missing (expected a positive integer)"))
    }

    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                self.err(key, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    /// A token id; HF sometimes stores a list (several EOS ids): the first one is the canonical id.
    pub fn opt_token_id(&self, key: &str) -> Result<Option<u32>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(serde_json::Value::Array(items)) => match items.first() {
                Some(v) => v
                    .as_u64()
                    .map(|n| Some(n as u32))
                    .ok_or_else(|| self.err(key, format!("expected token ids, found {v}"))),
                None => Ok(None),
            },
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as u32))
                .ok_or_else(|| self.err(key, format!("expected a token id, found {v}"))),
        }
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(key, format!("expected a number, found {v}"))),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(key, format!("expected true or false, found {v}"))),
        }
    }

    /// Rejects a `true` at `key`: a feature the port does not implement (absent reads as false).
    pub fn reject_flag(&self, key: &str, problem: &str) -> Result<(), ConfigError> {
        self.require(key, !self.bool_or(key, false)?, problem)
    }

    /// HF-style keys every supported transformers-layout architecture shares: a SiLU MLP and RoPE
    /// without scaling.
    pub fn require_silu_and_plain_rope(&self) -> Result<(), ConfigError> {
        if let Ok(act) = self.string("hidden_act") {
            self.require(
                "hidden_act",
                act == "silu",
                &format!("activation {act:?} is not supported; expected \"silu\""),
            )?;
        }
        if let Some(scaling) = self.raw("rope_scaling") {
            self.require(
                "rope_scaling",
                false,
                &format!("RoPE scaling {scaling} is not supported"),
            )?;
        }
        Ok(())
    }

    /// Rejects a config that asks for a feature the port does not implement, instead of silently ignoring it.
    pub fn require(&self, key: &str, ok: bool, problem: &str) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.err(key, problem))
        }
    }
}
