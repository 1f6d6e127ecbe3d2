//! HF checkpoint folders: `config.json` plus `model.safetensors` or shards with
//! `model.safetensors.index.json`, stored in f32, f16 or bf16.
//!
//! Loading checks every expected tensor (presence, shape, dtype) before any data is read and names
//! the file and tensor in one line when something is off. Saving writes the same layout, names and
//! on-disk dtypes with `format: pt` metadata into a temporary folder that is renamed into place, and
//! never writes into the folder it loaded from.

pub mod adapter;
mod model_files;
mod save;
mod shard;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::TensorData;
use serde::Deserialize;

pub use adapter::save_adapter;
pub use model_files::ModelFiles;
pub use save::save;
pub use shard::DiskDtype;
use shard::Shard;

use crate::model::{expected_tensors, ConfigError, MaskedDiffusionLm, ModelConfig, Weight};

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The caller's stop check fired between two tensors of a load.
    #[error("loading stopped")]
    Stopped,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{dir}: no weights: expected {SINGLE_FILE} or {INDEX_FILE}")]
    NoWeights { dir: String },
    #[error("{file}: not a valid safetensors file: {reason}")]
    Corrupt { file: String, reason: String },
    #[error("{file}: {reason}")]
    Index { file: String, reason: String },
    #[error("{file}: tensor `{name}` is missing (expected shape {expected:?}){hint}")]
    Missing {
        file: String,
        name: String,
        expected: Vec<usize>,
        hint: String,
    },
    #[error("{file}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        file: String,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{file}: tensor `{name}` is stored as {found}; expected F32, F16 or BF16")]
    Dtype {
        file: String,
        name: String,
        found: String,
    },
    #[error("{dir}: the model needs about {need_gib:.2} GiB on {device} but only {have_gib:.2} GiB is available")]
    TooBig {
        dir: String,
        device: String,
        need_gib: f64,
        have_gib: f64,
    },
    #[error("{dir}: tensor `{name}` is {need_mib:.0} MiB, more than the {limit_mib:.0} MiB one buffer may hold on {device}")]
    BufferLimit {
        dir: String,
        name: String,
        device: String,
        need_mib: f64,
        limit_mib: f64,
    },
    #[error("{dir}: refusing to save: {reason}")]
    Output { dir: String, reason: String },
    #[error("{file}: cannot write: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
}

/// How the weights of a checkpoint are laid out on disk, so a save can reproduce it.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightLayout {
    /// Shard file names in order; one entry (`model.safetensors`) when not sharded.
    pub files: Vec<String>,
    pub sharded: bool,
    /// Tensor name → file that holds it.
    pub tensor_file: BTreeMap<String, String>,
    /// Tensor name → on-disk dtype.
    pub dtypes: BTreeMap<String, DiskDtype>,
}

impl WeightLayout {
    /// One `model.safetensors` with every tensor in `dtype` (for models that never had a file).
    pub fn single(config: &ModelConfig, dtype: DiskDtype) -> Self {
        let names: Vec<String> = expected_tensors(config)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        Self {
            files: vec![SINGLE_FILE.into()],
            sharded: false,
            tensor_file: names
                .iter()
                .map(|n| (n.clone(), SINGLE_FILE.into()))
                .collect(),
            dtypes: names.iter().map(|n| (n.clone(), dtype)).collect(),
        }
    }

    /// The dtype most tensors are stored in (shown to users as "the" checkpoint dtype).
    pub fn main_dtype(&self) -> DiskDtype {
        let mut counts: BTreeMap<&str, (usize, DiskDtype)> = BTreeMap::new();
        for d in self.dtypes.values() {
            counts.entry(d.name()).or_insert((0, *d)).0 += 1;
        }
        counts
            .values()
            .max_by_key(|(n, _)| *n)
            .map(|(_, d)| *d)
            .unwrap_or(DiskDtype::F32)
    }
}

/// A checkpoint folder whose config and tensor headers have been read and checked (no weights yet).
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub layout: WeightLayout,
    shards: BTreeMap<String, Shard>,
}

#[derive(Deserialize)]
struct IndexJson {
    weight_map: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Reads `config.json` and the safetensors headers and checks every expected tensor.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let config = ModelConfig::from_dir(dir)?;
        let index_path = dir.join(INDEX_FILE);
        let single_path = dir.join(SINGLE_FILE);
        let (sharded, weight_map) = if index_path.exists() {
            let file = index_path.display().to_string();
            let text =
                std::fs::read_to_string(&index_path).map_err(|source| CheckpointError::Io {
                    file: file.clone(),
                    source,
                })?;
            let index: IndexJson =
                serde_json::from_str(&text).map_err(|e| CheckpointError::Index {
                    file: file.clone(),
                    reason: format!("not a valid index: {e}"),
                })?;
            (true, Some(index.weight_map))
        } else if single_path.exists() {
            (false, None)
        } else {
            return Err(CheckpointError::NoWeights {
                dir: dir.display().to_string(),
            });
        };

        let mut files: Vec<String> = match &weight_map {
            Some(map) => map
                .values()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            None => vec![SINGLE_FILE.to_string()],
        };
        files.sort();
        let mut shards = BTreeMap::new();
        for f in &files {
            shards.insert(f.clone(), Shard::open(&dir.join(f))?);
        }

        // A config that misdescribes the weights (a dense config over experts) is named as such,
        // before any tensor is reported missing.
        let all_names = shards
            .values()
            .flat_map(|s| s.tensors.keys().map(String::as_str));
        crate::model::family::check_tensor_layout(&config, all_names).map_err(|reason| {
            CheckpointError::Index {
                file: dir.join("config.json").display().to_string(),
                reason,
            }
        })?;
        let mut tensor_file = BTreeMap::new();
        let mut dtypes = BTreeMap::new();
        let mut used = BTreeSet::new();
        for (name, expected) in expected_tensors(&config) {
            let file_name = match &weight_map {
                Some(map) => match map.get(&name) {
                    Some(f) => f.clone(),
                    None => {
                        let file = index_path.display().to_string();
                        let hint = closest_unknown(&name, map.keys(), &expected_names(&config));
                        return Err(CheckpointError::Missing {
                            file,
                            name,
                            expected,
                            hint,
                        });
                    }
                },
                None => SINGLE_FILE.to_string(),
            };
            let shard = &shards[&file_name];
            let file = shard.path.display().to_string();
            let Some(entry) = shard.tensors.get(&name) else {
                let hint = closest_unknown(&name, shard.tensors.keys(), &expected_names(&config));
                return Err(CheckpointError::Missing {
                    file,
                    name,
                    expected,
                    hint,
                });
            };
            if entry.shape != expected {
                return Err(CheckpointError::Shape {
                    file,
                    name,
                    found: entry.shape.clone(),
                    expected,
                });
            }
            let Some(dtype) = DiskDtype::parse(&entry.dtype) else {
                return Err(CheckpointError::Dtype {
                    file,
                    name,
                    found: entry.dtype.clone(),
                });
            };
            used.insert(name.clone());
            tensor_file.insert(name.clone(), file_name);
            dtypes.insert(name, dtype);
        }
        let layout = WeightLayout {
            files,
            sharded,
            tensor_file,
            dtypes,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            layout,
            shards,
        })
    }

    /// Bytes the weights occupy on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.shards.values().map(|s| s.data_len() as u64).sum()
    }

    /// Reads one tensor as f32 host data in its HF shape.
    pub fn tensor_data(&self, name: &str) -> Result<TensorData, CheckpointError> {
        let file_name = &self.layout.tensor_file[name];
        let shard = &self.shards[file_name];
        let entry = &shard.tensors[name];
        let dtype = self.layout.dtypes[name];
        Ok(TensorData::new(
            dtype.decode(shard.bytes(entry)),
            entry.shape.clone(),
        ))
    }

    /// Raw on-disk bytes of a tensor (tests compare these after a save).
    pub fn tensor_bytes(&self, name: &str) -> &[u8] {
        let shard = &self.shards[&self.layout.tensor_file[name]];
        shard.bytes(&shard.tensors[name])
    }

    /// The `__metadata__` of the file holding `name`.
    pub fn file_metadata(&self, file: &str) -> Option<&BTreeMap<String, String>> {
        self.shards.get(file).map(|s| &s.metadata)
    }

    /// Loads the weights as f32 onto `device`, after checking the memory estimate against `budget`.
    pub fn load<B: Backend>(
        &self,
        device: &B::Device,
        budget: &MemoryBudget,
    ) -> Result<MaskedDiffusionLm<B>, CheckpointError> {
        self.load_until(device, budget, &|| false)
    }

    /// `load`, asking `stop` before every tensor: an 8B checkpoint has ~290 of them, so Stop
    /// takes effect within one tensor's read and upload (well under a second), not the whole load.
    pub fn load_until<B: Backend>(
        &self,
        device: &B::Device,
        budget: &MemoryBudget,
        stop: &dyn Fn() -> bool,
    ) -> Result<MaskedDiffusionLm<B>, CheckpointError> {
        // The weights are stored in the device's float type (bf16 on CUDA by default).
        let bytes_per_param = crate::model::precision::storage_bytes::<B>(device);
        budget.check(&self.dir, &self.config, bytes_per_param)?;
        MaskedDiffusionLm::build(&self.config, device, |w: Weight, layer| {
            if stop() {
                return Err(CheckpointError::Stopped);
            }
            let name = w
                .name(&self.config, layer)
                .expect("build asks only for weights the architecture has");
            self.tensor_data(&name)
        })
    }
}

fn expected_names(config: &ModelConfig) -> BTreeSet<String> {
    expected_tensors(config)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// For a missing tensor, names the unexpected tensor in the file that looks most like it.
fn closest_unknown<'a>(
    missing: &str,
    present: impl Iterator<Item = &'a String>,
    expected: &BTreeSet<String>,
) -> String {
    let common = |a: &str, b: &str| {
        let prefix = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        let suffix = a
            .bytes()
            .rev()
            .zip(b.bytes().rev())
            .take_while(|(x, y)| x == y)
            .count();
        prefix + suffix
    };
    present
        .filter(|n| !expected.contains(*n))
        .max_by_key(|n| common(missing, n))
        .map(|n| format!("; the file has an unexpected tensor `{n}`"))
        .unwrap_or_default()
}

/// What a device can hold, for the pre-load estimate.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    pub device: String,
    /// Bytes free for the model, when known.
    pub available: Option<u64>,
    /// Largest single buffer the device allows, when limited (wgpu).
    pub max_buffer: Option<u64>,
}

impl MemoryBudget {
    pub fn unlimited(device: &str) -> Self {
        Self {
            device: device.to_string(),
            available: None,
            max_buffer: None,
        }
    }

    /// Refuses with the numbers when the weights (at `bytes_per_param`) plus a forward pass's working set cannot fit.
    pub fn check(
        &self,
        dir: &Path,
        config: &ModelConfig,
        bytes_per_param: u64,
    ) -> Result<(), CheckpointError> {
        let need = estimate_bytes(config, bytes_per_param);
        if let Some(have) = self.available {
            if need > have {
                let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
                return Err(CheckpointError::TooBig {
                    dir: dir.display().to_string(),
                    device: self.device.clone(),
                    need_gib: gib(need),
                    have_gib: gib(have),
                });
            }
        }
        if let Some(limit) = self.max_buffer {
            for (name, shape) in expected_tensors(config) {
                let bytes = shape.iter().product::<usize>() as u64 * bytes_per_param;
                if bytes > limit {
                    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
                    return Err(CheckpointError::BufferLimit {
                        dir: dir.display().to_string(),
                        name,
                        device: self.device.clone(),
                        need_mib: mib(bytes),
                        limit_mib: mib(limit),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Weights plus the working set of one 512-token forward pass (largest activation and logits rows).
pub fn estimate_bytes(config: &ModelConfig, bytes_per_param: u64) -> u64 {
    let weights = config.num_parameters() * bytes_per_param;
    let tokens = 512u64;
    let activations =
        tokens * (config.hidden_size.max(config.intermediate_size) as u64) * 8 * bytes_per_param;
    let attention = tokens * tokens * config.num_heads as u64 * bytes_per_param * 2;
    let logits = tokens * config.vocab_size as u64 * 4;
    weights + activations + attention + logits
}
