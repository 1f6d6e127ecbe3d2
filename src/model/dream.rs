//! Dream (`Dream-org/Dream-v0-Instruct-7B`): config keys and tensor names.
//!
//! Key characteristics (mdlm.md §3): Qwen2 layout with bidirectional attention, GQA (28 query / 4 kv
//! heads in the 7B), q/k/v biases, untied `lm_head`, half-rotation RoPE (θ = 1e6), RMSNorm eps 1e-6,
//! an embedding row at `pad_token_id` that receives no gradient, and logits that consumers shift right
//! by one position (the prediction for position i comes from the hidden state at i−1).

use super::config::{Architecture, ConfigError, HfKeys, ModelConfig};
use super::Weight;

pub fn config_from_hf(keys: &HfKeys) -> Result<ModelConfig, ConfigError> {
    let hidden_size = keys.usize("hidden_size")?;
    let num_heads = keys.usize("num_attention_heads")?;
    keys.reject_flag(
        "tie_word_embeddings",
        "tied embeddings are not supported (Dream ships an untied lm_head)",
    )?;
    keys.reject_flag(
        "use_sliding_window",
        "sliding-window attention is not supported",
    )?;
    keys.reject_flag("use_mrope", "multimodal RoPE is not supported")?;
    keys.require_silu_and_plain_rope()?;
    let head_dim = keys.opt_usize("head_dim")?.unwrap_or(if num_heads > 0 {
        hidden_size / num_heads
    } else {
        0
    });
    Ok(ModelConfig {
        architecture: Architecture::Dream,
        hidden_size,
        num_layers: keys.usize("num_hidden_layers")?,
        num_heads,
        num_kv_heads: keys.opt_usize("num_key_value_heads")?.unwrap_or(num_heads),
        head_dim,
        intermediate_size: keys.usize("intermediate_size")?,
        vocab_size: keys.usize("vocab_size")?,
        rope_theta: keys.f64_or("rope_theta", 10000.0)?,
        rms_norm_eps: keys.f64_or("rms_norm_eps", 1e-6)?,
        max_position_embeddings: keys.opt_usize("max_position_embeddings")?.unwrap_or(2048),
        qkv_bias: true,
        qk_norm: false,
        tied_embeddings: false,
        rotary_dim: head_dim,
        clip_qkv: None,
        moe: None,
        mask_token_id: keys.opt_token_id("mask_token_id")?,
        eos_token_id: keys.opt_token_id("eos_token_id")?,
        pad_token_id: keys.opt_token_id("pad_token_id")?,
        bos_token_id: keys.opt_token_id("bos_token_id")?,
    })
}

pub fn config_to_hf(c: &ModelConfig) -> serde_json::Value {
    serde_json::json!({
        "model_type": "Dream",
        "architectures": ["DreamModel"],
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "intermediate_size": c.intermediate_size,
        "vocab_size": c.vocab_size,
        "hidden_act": "silu",
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": null,
        "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": false,
        "use_sliding_window": false,
        "use_mrope": false,
        "attention_dropout": 0.0,
        "mask_token_id": c.mask_token_id,
        "eos_token_id": c.eos_token_id,
        "pad_token_id": c.pad_token_id,
        "bos_token_id": c.bos_token_id,
    })
}

/// The HF name of a weight: transformers' Qwen2 names (Dream has no q/k norm).
pub fn tensor_name(weight: Weight, layer: usize) -> Option<String> {
    match weight {
        Weight::QNorm | Weight::KNorm => None,
        w => super::transformers_name(w, layer),
    }
}
