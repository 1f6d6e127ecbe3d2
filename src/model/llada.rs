//! LLaDA (`GSAI-ML/LLaDA-8B-Instruct` and its family): config keys and tensor names.
//!
//! Key characteristics (mdlm.md §1): LLaMA-style blocks with bidirectional attention, MHA
//! (`n_kv_heads` may still be smaller), no biases anywhere, untied LM head `model.transformer.ff_out`,
//! half-rotation RoPE (θ = 500000 for the 8B), RMSNorm eps 1e-5, mask token `<|mdm_mask|>`.

use super::config::{Architecture, ConfigError, HfKeys, ModelConfig};
use super::Weight;

pub fn config_from_hf(keys: &HfKeys) -> Result<ModelConfig, ConfigError> {
    let hidden_size = keys.usize("d_model")?;
    let num_heads = keys.usize("n_heads")?;
    let num_kv_heads = keys.opt_usize("n_kv_heads")?.unwrap_or(num_heads);
    let vocab = keys.usize("vocab_size")?;
    // `embedding_size` (rows actually stored) wins over `vocab_size` when present, as in LLaDA's own code.
    let vocab_size = keys
        .opt_usize("embedding_size")?
        .unwrap_or(vocab)
        .max(vocab);
    let intermediate_size = match keys.opt_usize("mlp_hidden_size")? {
        Some(n) => n,
        None => keys.opt_usize("mlp_ratio")?.unwrap_or(4) * hidden_size,
    };
    keys.require(
        "weight_tying",
        !keys.bool_or("weight_tying", false)?,
        "tied embeddings are not supported (LLaDA ships an untied head)",
    )?;
    keys.require(
        "include_bias",
        !keys.bool_or("include_bias", false)?,
        "linear biases are not supported for LLaDA",
    )?;
    keys.require(
        "include_qkv_bias",
        !keys.bool_or("include_qkv_bias", false)?,
        "q/k/v biases are not supported for LLaDA",
    )?;
    keys.require(
        "alibi",
        !keys.bool_or("alibi", false)?,
        "ALiBi is not supported; LLaDA uses RoPE",
    )?;
    keys.require(
        "rope",
        keys.bool_or("rope", true)?,
        "only RoPE position encoding is supported",
    )?;
    keys.require(
        "attention_layer_norm",
        !keys.bool_or("attention_layer_norm", false)?,
        "q/k layer norm is not supported",
    )?;
    keys.require(
        "scale_logits",
        !keys.bool_or("scale_logits", false)?,
        "logit scaling is not supported",
    )?;
    keys.require(
        "input_emb_norm",
        !keys.bool_or("input_emb_norm", false)?,
        "embedding scaling is not supported",
    )?;
    if let Ok(block) = keys.string("block_type") {
        keys.require(
            "block_type",
            block == "llama",
            &format!("block type {block:?} is not supported; expected \"llama\""),
        )?;
    }
    if let Ok(norm) = keys.string("layer_norm_type") {
        keys.require(
            "layer_norm_type",
            norm == "rms",
            &format!("norm type {norm:?} is not supported; expected \"rms\""),
        )?;
    }
    let head_dim = if num_heads > 0 {
        hidden_size / num_heads
    } else {
        0
    };
    Ok(ModelConfig {
        architecture: Architecture::Llada,
        hidden_size,
        num_layers: keys.usize("n_layers")?,
        num_heads,
        num_kv_heads,
        head_dim,
        intermediate_size,
        vocab_size,
        rope_theta: keys.f64_or("rope_theta", 10000.0)?,
        rms_norm_eps: keys.f64_or("rms_norm_eps", 1e-5)?,
        max_position_embeddings: keys.opt_usize("max_sequence_length")?.unwrap_or(4096),
        qkv_bias: false,
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
        "model_type": "llada",
        "architectures": ["LLaDAModelLM"],
        "d_model": c.hidden_size,
        "n_layers": c.num_layers,
        "n_heads": c.num_heads,
        "n_kv_heads": c.num_kv_heads,
        "mlp_hidden_size": c.intermediate_size,
        "mlp_ratio": 4,
        "vocab_size": c.vocab_size,
        "embedding_size": c.vocab_size,
        "rope": true,
        "rope_theta": c.rope_theta,
        "rope_full_precision": true,
        "rms_norm_eps": c.rms_norm_eps,
        "max_sequence_length": c.max_position_embeddings,
        "block_type": "llama",
        "block_group_size": 1,
        "activation_type": "silu",
        "layer_norm_type": "rms",
        "layer_norm_with_affine": true,
        "bias_for_layer_norm": false,
        "attention_layer_norm": false,
        "include_bias": false,
        "include_qkv_bias": false,
        "weight_tying": false,
        "alibi": false,
        "scale_logits": false,
        "input_emb_norm": false,
        "attention_dropout": 0.0,
        "residual_dropout": 0.0,
        "embedding_dropout": 0.0,
        "flash_attention": false,
        "use_cache": false,
        "mask_token_id": c.mask_token_id,
        "eos_token_id": c.eos_token_id,
        "pad_token_id": c.pad_token_id,
        "bos_token_id": c.bos_token_id,
    })
}

/// The HF name of a weight (`None` for weights LLaDA does not have).
pub fn tensor_name(weight: Weight, layer: usize) -> Option<String> {
    let block = |leaf: &str| Some(format!("model.transformer.blocks.{layer}.{leaf}.weight"));
    match weight {
        Weight::Embed => Some("model.transformer.wte.weight".into()),
        Weight::FinalNorm => Some("model.transformer.ln_f.weight".into()),
        Weight::LmHead => Some("model.transformer.ff_out.weight".into()),
        Weight::AttnNorm => block("attn_norm"),
        Weight::Q => block("q_proj"),
        Weight::K => block("k_proj"),
        Weight::V => block("v_proj"),
        Weight::O => block("attn_out"),
        Weight::MlpNorm => block("ff_norm"),
        Weight::Gate => block("ff_proj"),
        Weight::Up => block("up_proj"),
        Weight::Down => block("ff_out"),
        _ => None,
    }
}
