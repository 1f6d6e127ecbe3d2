//! LoRA adapter folders as PEFT writes and reads them: `adapter_config.json` plus
//! `adapter_model.safetensors` with keys `base_model.model.<module path>.lora_A.weight` /
//! `lora_B.weight`, where the module path is the base checkpoint's tensor name without `.weight`.
//!
//! `target_modules` is written as one regular expression that full-matches exactly the adapted
//! block projections: LLaDA's down projection and LM head are both called `ff_out`, so a list of
//! names would also put an adapter on the head when PEFT loads the folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::TensorData;

use super::save::{write_new_folder, EncodedTensor};
use super::shard::{DiskDtype, Shard};
use super::CheckpointError;
use crate::model::lora::{Adapters, BlockAdapters, LoraPair};
use crate::model::{LoraSettings, LoraTarget, ModelConfig, Weight};

pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
const KEY_PREFIX: &str = "base_model.model.";

/// True when `dir` holds a PEFT adapter rather than a full model.
pub fn is_adapter_dir(dir: &Path) -> bool {
    dir.join(ADAPTER_CONFIG).is_file()
}

/// An adapter folder opened: its settings, where its base model is, and its tensors' headers.
pub struct AdapterFiles {
    pub dir: PathBuf,
    /// Rank, α, dropout and rsLoRA from the config; the targets are known once [`Self::load`]
    /// has matched the tensors to the base's projections (its result carries them).
    pub settings: LoraSettings,
    /// `base_model_name_or_path` as a folder (relative paths are taken from the adapter folder).
    pub base: Option<PathBuf>,
    shard: Shard,
}

impl AdapterFiles {
    /// Reads `adapter_config.json` (LoRA only; DoRA, per-layer ranks and bias training are
    /// refused by name) and the safetensors header.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(ADAPTER_CONFIG);
        let file = path.display().to_string();
        let bad = |reason: String| CheckpointError::Index {
            file: file.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|source| CheckpointError::Io {
            file: file.clone(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let field = |key: &str| json.get(key).filter(|v| !v.is_null());
        let peft_type = field("peft_type").and_then(|v| v.as_str()).unwrap_or("");
        if peft_type != "LORA" {
            return Err(bad(format!(
                "peft_type is {peft_type:?}; only LoRA adapters (\"LORA\") are supported"
            )));
        }
        let rank = field("r")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("field `r` (the rank) is missing or not a whole number".into()))?;
        let alpha = field("lora_alpha")
            .and_then(|v| v.as_f64())
            .ok_or_else(|| bad("field `lora_alpha` is missing or not a number".into()))?;
        let flag = |key: &str| field(key).and_then(|v| v.as_bool()).unwrap_or(false);
        for (key, what) in [
            ("use_dora", "DoRA"),
            ("fan_in_fan_out", "fan_in_fan_out (Conv1D layouts)"),
            ("lora_bias", "LoRA biases"),
        ] {
            if flag(key) {
                return Err(bad(format!("{what} is not supported (`{key}` is true)")));
            }
        }
        if let Some(bias) = field("bias").and_then(|v| v.as_str()) {
            if bias != "none" {
                return Err(bad(format!(
                    "bias {bias:?} is not supported; expected \"none\""
                )));
            }
        }
        for key in ["rank_pattern", "alpha_pattern"] {
            if field(key)
                .and_then(|v| v.as_object())
                .is_some_and(|m| !m.is_empty())
            {
                return Err(bad(format!(
                    "per-module ranks or alphas (`{key}`) are not supported"
                )));
            }
        }
        let base = field("base_model_name_or_path")
            .and_then(|v| v.as_str())
            .map(|b| dir.join(b))
            .filter(|b| b.is_dir());
        let shard = Shard::open(&dir.join(ADAPTER_WEIGHTS))?;
        let settings = LoraSettings {
            rank: rank as usize,
            alpha,
            dropout: field("lora_dropout")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0),
            targets: Vec::new(),
            rslora: flag("use_rslora"),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            settings,
            base,
            shard,
        })
    }

    /// The adapters for a base of `config`: every tensor must be a `lora_A`/`lora_B` of a block
    /// projection, in pairs of the configured rank and the projection's shape.
    pub fn load<B: Backend>(
        &self,
        config: &ModelConfig,
        device: &B::Device,
    ) -> Result<Adapters<B>, CheckpointError> {
        let file = self.shard.path.display().to_string();
        let modules = module_paths(config);
        let rank = self.settings.rank;
        let mut found: BTreeMap<(usize, Weight), [Option<TensorData>; 2]> = BTreeMap::new();
        for (key, entry) in &self.shard.tensors {
            let unknown = || CheckpointError::Index {
                file: file.clone(),
                reason: format!(
                    "tensor `{key}` is not a LoRA weight of a block projection of this {} model",
                    config.architecture.name()
                ),
            };
            let rest = key.strip_prefix(KEY_PREFIX).ok_or_else(unknown)?;
            let (path, which) = if let Some(p) = rest.strip_suffix(".lora_A.weight") {
                (p, 0)
            } else if let Some(p) = rest.strip_suffix(".lora_B.weight") {
                (p, 1)
            } else {
                return Err(unknown());
            };
            let &(layer, weight) = modules.get(path).ok_or_else(unknown)?;
            let shape = weight.shape(config);
            let expected = if which == 0 {
                vec![rank, shape[1]]
            } else {
                vec![shape[0], rank]
            };
            if entry.shape != expected {
                return Err(CheckpointError::Shape {
                    file: file.clone(),
                    name: key.clone(),
                    found: entry.shape.clone(),
                    expected,
                });
            }
            let dtype = DiskDtype::parse(&entry.dtype).ok_or_else(|| CheckpointError::Dtype {
                file: file.clone(),
                name: key.clone(),
                found: entry.dtype.clone(),
            })?;
            let values = dtype.decode(self.shard.bytes(entry));
            found.entry((layer, weight)).or_default()[which] =
                Some(TensorData::new(values, expected));
        }
        let mut blocks: Vec<BlockAdapters<B>> = (0..config.num_layers)
            .map(|_| BlockAdapters::empty())
            .collect();
        let mut targets = Vec::new();
        for ((layer, weight), [a, b]) in found {
            let (Some(a), Some(b)) = (a, b) else {
                let module = module_path(config, weight, layer);
                return Err(CheckpointError::Index {
                    file: file.clone(),
                    reason: format!("`{module}` has only one of lora_A and lora_B"),
                });
            };
            blocks[layer].set_weight(weight, Adapters::pair(a, b, device));
            let target =
                LoraTarget::of_weight(weight).expect("module_paths lists adaptable weights");
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        if targets.is_empty() {
            return Err(CheckpointError::Index {
                file,
                reason: "the adapter holds no LoRA weights".into(),
            });
        }
        targets.sort();
        Ok(Adapters {
            blocks,
            settings: LoraSettings {
                targets,
                ..self.settings.clone()
            },
        })
    }
}

/// `model.transformer.blocks.3.q_proj`: the module path of a projection in the base checkpoint.
fn module_path(config: &ModelConfig, weight: Weight, layer: usize) -> String {
    let name = weight
        .name(config, layer)
        .expect("adapters sit only on projections the architecture has");
    name.strip_suffix(".weight").unwrap_or(&name).to_string()
}

/// Every projection an adapter can sit on (experts included), by module path.
fn module_paths(config: &ModelConfig) -> BTreeMap<String, (usize, Weight)> {
    let mut out = BTreeMap::new();
    for layer in 0..config.num_layers {
        for target in LoraTarget::ALL {
            for weight in target.weights_in(config, layer) {
                out.insert(module_path(config, weight, layer), (layer, weight));
            }
        }
    }
    out
}

/// One regular expression full-matching the adapted projections of every layer: each path with
/// its layer and expert numbers made patterns (`.3.` → `.\d+.`), without repeats.
fn target_regex(config: &ModelConfig, targets: &[LoraTarget]) -> String {
    let mut patterns: Vec<String> = Vec::new();
    for layer in 0..config.num_layers {
        for &target in targets {
            for weight in target.weights_in(config, layer) {
                let escaped = module_path(config, weight, layer).replace('.', "\\.");
                let pattern: Vec<&str> = escaped.split("\\.").collect();
                let pattern = pattern
                    .iter()
                    .map(|part| {
                        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                            "\\d+"
                        } else {
                            part
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\\.");
                if !patterns.contains(&pattern) {
                    patterns.push(pattern);
                }
            }
        }
    }
    patterns.join("|")
}

/// Writes a model's LoRA `adapters` as a PEFT folder `out` whose base model is `base`, the same
/// way [`super::save`] writes a model (temporary folder renamed into place).
pub fn save_adapter<B: Backend>(
    adapters: &Adapters<B>,
    config: &ModelConfig,
    base: &Path,
    out: &Path,
) -> Result<(), CheckpointError> {
    write_new_folder(out, Some(base), |tmp| {
        write_adapter_folder(adapters, config, base, tmp)
    })
}

/// The PEFT folder of `adapters` (f32 tensors) for a base of `config` found at `base`.
fn write_adapter_folder<B: Backend>(
    adapters: &Adapters<B>,
    config: &ModelConfig,
    base: &Path,
    dir: &Path,
) -> Result<(), CheckpointError> {
    let write_err = |file: &Path, e: std::io::Error| CheckpointError::Write {
        file: file.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let mut tensors: Vec<(String, EncodedTensor)> = Vec::new();
    for (layer, block) in adapters.blocks.iter().enumerate() {
        for (weight, pair) in block.pairs() {
            let module = module_path(config, weight, layer);
            for (which, data) in pair_data(pair) {
                let values = data
                    .clone()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .expect("f32 after convert");
                tensors.push((
                    format!("{KEY_PREFIX}{module}.{which}.weight"),
                    EncodedTensor {
                        dtype: safetensors::Dtype::F32,
                        shape: data.shape.to_vec(),
                        bytes: DiskDtype::F32.encode(&values),
                    },
                ));
            }
        }
    }
    let metadata: std::collections::HashMap<String, String> =
        [("format".to_string(), "pt".to_string())].into();
    let weights = dir.join(ADAPTER_WEIGHTS);
    let views = tensors.iter().map(|(n, t)| (n.as_str(), t));
    safetensors::serialize_to_file(views, Some(metadata), &weights)
        .map_err(|e| write_err(&weights, std::io::Error::other(e)))?;
    let s = &adapters.settings;
    let json = serde_json::json!({
        "peft_type": "LORA",
        "base_model_name_or_path": base.display().to_string(),
        "r": s.rank,
        "lora_alpha": s.alpha,
        "lora_dropout": s.dropout,
        "use_rslora": s.rslora,
        "target_modules": target_regex(config, &s.targets),
        "bias": "none",
        "fan_in_fan_out": false,
        "use_dora": false,
        "init_lora_weights": true,
        "inference_mode": true,
        "modules_to_save": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "layers_to_transform": null,
        "layers_pattern": null,
        "task_type": null,
        "revision": null,
    });
    let path = dir.join(ADAPTER_CONFIG);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .map_err(|e| write_err(&path, e))
}

fn pair_data<B: Backend>(pair: &LoraPair<B>) -> [(&'static str, TensorData); 2] {
    [
        ("lora_A", pair.a.val().into_data()),
        ("lora_B", pair.b.val().into_data()),
    ]
}
