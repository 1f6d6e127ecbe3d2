//! LLaDA-MoE (`inclusionAI/LLaDA-MoE-7B-A1B-Base`/`-Instruct`): config keys and tensor names.
//!
//! Key characteristics (docs/architectures.md, from dllm's `modeling_lladamoe.py`): OLMoE-style
//! blocks with bidirectional attention; per-head RMSNorm on q and k before RoPE; partial
//! half-rotation RoPE (`partial_rotary_factor`); optional clamping of q/k/v (`clip_qkv`); each
//! layer's MLP either dense (`moe_layer_freq[i] == 0`) or routed experts (softmax router in f32,
//! plus the `expert_bias` buffer when enabled, top-k without renormalisation) with an always-on
//! shared expert; untied head; mask token `<|mask|>`; no logit shift. Its `config.json` says
//! `"model_type": "llada"`: `family.rs` recognises it by its expert keys.
//!
//! dllm's code ignores three keys, and so does this port, so that both compute the same model:
//! `norm_topk_prob` (hard-coded false), `moe_router_score_function` (always softmax) and
//! `routed_scaling_factor` (never applied).

use super::config::{Architecture, ConfigError, HfKeys, ModelConfig, MoeConfig};
use super::Weight;

pub fn config_from_hf(keys: &HfKeys) -> Result<ModelConfig, ConfigError> {
    let hidden_size = keys.usize("hidden_size")?;
    let num_heads = keys.usize("num_attention_heads")?;
    let num_layers = keys.usize("num_hidden_layers")?;
    keys.reject_flag(
        "attention_bias",
        "attention biases are not supported for LLaDA-MoE",
    )?;
    keys.require_silu_and_plain_rope()?;
    let head_dim = if num_heads > 0 {
        hidden_size / num_heads
    } else {
        0
    };
    let factor = keys.f64_or("partial_rotary_factor", 1.0)?;
    keys.require(
        "partial_rotary_factor",
        factor > 0.0 && factor <= 1.0,
        &format!("expected a fraction in (0, 1], found {factor}"),
    )?;
    let moe_layers = match keys.raw("moe_layer_freq") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_u64().map(|n| n != 0))
            .collect::<Option<Vec<bool>>>(),
        _ => None,
    }
    .ok_or_else(|| {
        keys.err(
            "moe_layer_freq",
            "expected a list with 0 (dense) or 1 (experts) per layer",
        )
    })?;
    let shared = keys
        .opt_usize("shared_expert_intermediate_size")
        .ok()
        .flatten()
        .filter(|&n| n > 0);
    let clip_qkv = match keys.raw("clip_qkv") {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .ok_or_else(|| keys.err("clip_qkv", format!("expected a number, found {v}")))?,
        ),
    };
    Ok(ModelConfig {
        architecture: Architecture::LladaMoe,
        hidden_size,
        num_layers,
        num_heads,
        num_kv_heads: keys.opt_usize("num_key_value_heads")?.unwrap_or(num_heads),
        head_dim,
        intermediate_size: keys.usize("dense_intermediate_size")?,
        vocab_size: keys.usize("vocab_size")?,
        rope_theta: keys.f64_or("rope_theta", 10000.0)?,
        rms_norm_eps: keys.f64_or("rms_norm_eps", 1e-5)?,
        max_position_embeddings: keys.opt_usize("max_position_embeddings")?.unwrap_or(4096),
        qkv_bias: false,
        qk_norm: keys.bool_or("qk_layernorm", false)?,
        tied_embeddings: keys.bool_or("tie_word_embeddings", false)?,
        rotary_dim: (head_dim as f64 * factor) as usize,
        clip_qkv,
        moe: Some(MoeConfig {
            num_experts: keys.usize("num_experts")?,
            top_k: keys.usize("num_experts_per_tok")?,
            expert_intermediate_size: keys.usize("expert_intermediate_size")?,
            shared_intermediate_size: shared,
            moe_layers,
            expert_bias: keys.bool_or("moe_router_enable_expert_bias", false)?,
        }),
        mask_token_id: keys.opt_token_id("mask_token_id")?,
        eos_token_id: keys.opt_token_id("eos_token_id")?,
        pad_token_id: keys.opt_token_id("pad_token_id")?,
        bos_token_id: keys.opt_token_id("bos_token_id")?,
    })
}

pub fn config_to_hf(c: &ModelConfig) -> serde_json::Value {
    let m = c.moe.as_ref();
    serde_json::json!({
        "model_type": "llada",
        "architectures": ["LLaDAMoEModelLM"],
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "dense_intermediate_size": c.intermediate_size,
        "expert_intermediate_size": m.map(|m| m.expert_intermediate_size),
        "shared_expert_intermediate_size": m.and_then(|m| m.shared_intermediate_size),
        "num_experts": m.map(|m| m.num_experts),
        "num_experts_per_tok": m.map(|m| m.top_k),
        "moe_layer_freq": m.map(|m| m.moe_layers.iter().map(|&x| x as u8).collect::<Vec<_>>()),
        "moe_router_enable_expert_bias": m.is_some_and(|m| m.expert_bias),
        "moe_router_score_function": "softmax",
        "norm_topk_prob": false,
        "qk_layernorm": c.qk_norm,
        "partial_rotary_factor": c.rotary_dim as f64 / c.head_dim as f64,
        "clip_qkv": c.clip_qkv,
        "vocab_size": c.vocab_size,
        "hidden_act": "silu",
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": null,
        "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": c.tied_embeddings,
        "attention_bias": false,
        "attention_dropout": 0.0,
        "mask_token_id": c.mask_token_id,
        "eos_token_id": c.eos_token_id,
        "pad_token_id": c.pad_token_id,
        "bos_token_id": c.bos_token_id,
    })
}

/// The HF name of a weight: the transformers-style names every layer shares, and the experts'.
pub fn tensor_name(weight: Weight, layer: usize) -> Option<String> {
    let layer_w = |leaf: &str| Some(format!("model.layers.{layer}.{leaf}"));
    let expert = |e: usize, proj: &str| layer_w(&format!("mlp.experts.{e}.{proj}_proj.weight"));
    match weight {
        Weight::Router => layer_w("mlp.gate.weight"),
        Weight::ExpertBias => layer_w("mlp.expert_bias"),
        Weight::ExpertGate(e) => expert(e, "gate"),
        Weight::ExpertUp(e) => expert(e, "up"),
        Weight::ExpertDown(e) => expert(e, "down"),
        Weight::SharedGate => layer_w("shared_expert.gate_proj.weight"),
        Weight::SharedUp => layer_w("shared_expert.up_proj.weight"),
        Weight::SharedDown => layer_w("shared_expert.down_proj.weight"),
        Weight::QBias | Weight::KBias | Weight::VBias => None,
        w => super::transformers_name(w, layer),
    }
}
