//! Qwen3 made bidirectional (dllm's "A2D" conversion, `model_type: "a2d-qwen3"`, e.g.
//! `dllm-hub/Qwen3-0.6B-diffusion-mdlm-v0.1`): config keys and tensor names.
//!
//! Key characteristics (docs/architectures.md): transformers' Qwen3 blocks with the causal mask
//! replaced by a padding-only one; GQA; an explicit `head_dim` (128 in the 0.6B, so q is wider
//! than the hidden size); per-head RMSNorm on q and k before RoPE; no biases; a head tied to the
//! embedding in the small models; half-rotation RoPE (θ = 1e6); mask token `<|mask|>` added to
//! the tokenizer by dllm; no logit shift (dllm trains A2D models with `right_shift_logits=False`).

use super::config::{Architecture, ConfigError, HfKeys, ModelConfig};
use super::Weight;

pub fn config_from_hf(keys: &HfKeys) -> Result<ModelConfig, ConfigError> {
    let hidden_size = keys.usize("hidden_size")?;
    let num_heads = keys.usize("num_attention_heads")?;
    keys.reject_flag(
        "use_sliding_window",
        "sliding-window attention is not supported",
    )?;
    keys.reject_flag(
        "attention_bias",
        "attention biases are not supported for Qwen3",
    )?;
    keys.require_silu_and_plain_rope()?;
    let head_dim = keys.opt_usize("head_dim")?.unwrap_or(if num_heads > 0 {
        hidden_size / num_heads
    } else {
        0
    });
    Ok(ModelConfig {
        architecture: Architecture::Qwen3A2d,
        hidden_size,
        num_layers: keys.usize("num_hidden_layers")?,
        num_heads,
        num_kv_heads: keys.opt_usize("num_key_value_heads")?.unwrap_or(num_heads),
        head_dim,
        intermediate_size: keys.usize("intermediate_size")?,
        vocab_size: keys.usize("vocab_size")?,
        rope_theta: keys.f64_or("rope_theta", 10000.0)?,
        rms_norm_eps: keys.f64_or("rms_norm_eps", 1e-6)?,
        max_position_embeddings: keys.opt_usize("max_position_embeddings")?.unwrap_or(32768),
        qkv_bias: false,
        qk_norm: true,
        tied_embeddings: keys.bool_or("tie_word_embeddings", false)?,
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
        "model_type": "a2d-qwen3",
        "architectures": ["A2DQwen3LMHeadModel"],
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "head_dim": c.head_dim,
        "intermediate_size": c.intermediate_size,
        "vocab_size": c.vocab_size,
        "hidden_act": "silu",
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": null,
        "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": c.tied_embeddings,
        "attention_bias": false,
        "use_sliding_window": false,
        "attention_dropout": 0.0,
        "mask_token_id": c.mask_token_id,
        "eos_token_id": c.eos_token_id,
        "pad_token_id": c.pad_token_id,
        "bos_token_id": c.bos_token_id,
    })
}

/// The HF name of a weight: transformers' Qwen3 names, without the head when it is tied and
/// without the q/k/v biases Qwen3 does not have.
pub fn tensor_name(weight: Weight, layer: usize, c: &ModelConfig) -> Option<String> {
    match weight {
        Weight::LmHead if c.tied_embeddings => None,
        Weight::QBias | Weight::KBias | Weight::VBias => None,
        w => super::transformers_name(w, layer),
    }
}
