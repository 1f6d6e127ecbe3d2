//! The resolved runtime configuration shared by every architecture, built from a checkpoint's own
//! HF `config.json` by the architecture files (`llada.rs`, `dream.rs`; `mod.rs` dispatches on the
//! architecture).

use serde::Serialize;

/// Which HF layout a checkpoint follows. Decides tensor names, config keys and the logit shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Architecture {
    /// LLaDA (`model_type: "llada"`): MHA, no biases, untied head, no logit shift.
    Llada,
    /// Dream (`model_type: "Dream"`): Qwen2 layout, GQA, q/k/v bias, logits right-shifted by consumers.
    Dream,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llada => "LLaDA",
            Architecture::Dream => "Dream",
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
    pub mask_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
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
    #[error(
        "{file}: unknown model_type {found:?}; supported: \"llada\" (LLaDA), \"Dream\" (Dream)"
    )]
    UnknownModelType { file: String, found: String },
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

    /// Parameter count from the shapes (embedding, head, blocks, norms).
    pub fn num_parameters(&self) -> u64 {
        let (d, f, v, kv) = (
            self.hidden_size as u64,
            self.intermediate_size as u64,
            self.vocab_size as u64,
            self.kv_dim() as u64,
        );
        let attn = d * d * 2 + d * kv * 2 + if self.qkv_bias { d + 2 * kv } else { 0 };
        let mlp = 3 * d * f;
        let block = attn + mlp + 2 * d;
        2 * v * d + self.num_layers as u64 * block + d
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

    fn err(&self, key: &str, problem: impl Into<String>) -> ConfigError {
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

    /// Rejects a config that asks for a feature the port does not implement, instead of silently ignoring it.
    pub fn require(&self, key: &str, ok: bool, problem: &str) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.err(key, problem))
        }
    }
}
