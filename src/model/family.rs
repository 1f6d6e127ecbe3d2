//! Which architecture a checkpoint is, decided in one place from its `config.json` (`model_type`,
//! `architectures`, the keys only one layout has) and checked against its tensor names; and which
//! published family and version it looks like, for `mdu inspect` and the window.
//!
//! LLaDA-MoE's own `config.json` says `"model_type": "llada"` although its layout is not LLaDA's,
//! so the layout keys decide, not the name alone.

use std::path::Path;

use super::config::{Architecture, ConfigError, ModelConfig};

/// The layouts this build reads, as the error message lists them.
pub const SUPPORTED: &str =
    "LLaDA (model_type \"llada\" with d_model/n_layers: LLaDA-8B, LLaDA-1.5), \
LLaDA-MoE (\"llada\" or \"lladamoe\" with num_experts/expert_intermediate_size), \
Dream (\"Dream\": Dream-7B, Dream-Coder), Qwen3 A2D (\"a2d-qwen3\", dllm's bidirectional Qwen3)";

/// The architecture `json` (read from `file`) describes, or an error naming what was found.
pub fn architecture_of(json: &serde_json::Value, file: &str) -> Result<Architecture, ConfigError> {
    let model_type = json
        .get("model_type")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let architectures: Vec<String> = json
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let has = |key: &str| json.get(key).is_some_and(|v| !v.is_null());
    let names = |needle: &str| architectures.iter().any(|a| a.contains(needle));
    let moe_layout = has("num_experts") || has("expert_intermediate_size") || names("MoE");
    let found = match model_type.as_str() {
        "dream" => return Ok(Architecture::Dream),
        "a2d-qwen3" => return Ok(Architecture::Qwen3A2d),
        "lladamoe" => return Ok(Architecture::LladaMoe),
        "llada" if moe_layout => return Ok(Architecture::LladaMoe),
        "llada" if has("d_model") => return Ok(Architecture::Llada),
        "llada" => {
            "model_type \"llada\" without LLaDA's d_model or LLaDA-MoE's expert keys".to_string()
        }
        "qwen3" | "qwen2" | "llama" => format!(
            "model_type {model_type:?}, an autoregressive (causal) model; convert it to a \
             bidirectional one with dllm's A2D script first"
        ),
        "" => "no model_type".to_string(),
        other => format!("model_type {other:?} (architectures {architectures:?})"),
    };
    Err(ConfigError::UnknownModelType {
        file: file.to_string(),
        found,
        supported: SUPPORTED.to_string(),
    })
}

/// Checks that the tensor names agree with the architecture the config chose: routed experts or
/// q/k norms in a checkpoint whose config has none mean the config misdescribes the weights.
pub fn check_tensor_layout<'a>(
    config: &ModelConfig,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), String> {
    let mut experts = None;
    let mut qk_norm = None;
    for name in names {
        if experts.is_none() && name.contains(".experts.") {
            experts = Some(name.to_string());
        }
        if qk_norm.is_none() && (name.contains("q_norm") || name.contains("k_norm")) {
            qk_norm = Some(name.to_string());
        }
    }
    let arch = config.architecture.name();
    if let (Some(name), None) = (&experts, &config.moe) {
        return Err(format!(
            "tensor `{name}` is a routed expert, but config.json describes a dense {arch} model; \
             supported: {SUPPORTED}"
        ));
    }
    if let (Some(name), false) = (&qk_norm, config.qk_norm) {
        return Err(format!(
            "tensor `{name}` is a q/k norm, but config.json describes a {arch} model without one \
             (qk_layernorm); supported: {SUPPORTED}"
        ));
    }
    Ok(())
}

/// The published family and version a checkpoint looks like: the architecture, refined by the
/// names in `_name_or_path` and the folder name where the configs of two releases are the same
/// (LLaDA and LLaDA-1.5, Dream and Dream-Coder).
pub fn family_name(config: &ModelConfig, json: &serde_json::Value, dir: &Path) -> String {
    let hint = format!(
        "{} {}",
        json.get("_name_or_path")
            .and_then(|v| v.as_str())
            .unwrap_or(""),
        dir.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    )
    .to_ascii_lowercase();
    let variant = if hint.contains("instruct") {
        " Instruct"
    } else if hint.contains("base") {
        " Base"
    } else {
        ""
    };
    let family = match config.architecture {
        Architecture::Llada if hint.contains("1.5") || hint.contains("1_5") => "LLaDA-1.5",
        Architecture::Llada => "LLaDA",
        Architecture::Dream if hint.contains("coder") => "Dream-Coder",
        Architecture::Dream => "Dream",
        Architecture::Qwen3A2d => "Qwen3 A2D (dllm)",
        Architecture::LladaMoe => "LLaDA-MoE",
    };
    format!("{family}{variant}")
}

/// [`family_name`] for a checkpoint folder, reading its `config.json` again for `_name_or_path`.
pub fn family_of_dir(config: &ModelConfig, dir: &Path) -> String {
    let json = std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    family_name(config, &json, dir)
}
