//! One safetensors file, memory-mapped, with its header validated against the file length so a
//! truncated or corrupt file is reported with the tensor that runs past the end.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::Deserialize;

use super::CheckpointError;

/// Element types a checkpoint may store floats in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DiskDtype {
    F32,
    F16,
    BF16,
}

impl DiskDtype {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "F32" => Some(Self::F32),
            "F16" => Some(Self::F16),
            "BF16" => Some(Self::BF16),
            _ => None,
        }
    }

    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
        }
    }

    pub fn safetensors(self) -> safetensors::Dtype {
        match self {
            Self::F32 => safetensors::Dtype::F32,
            Self::F16 => safetensors::Dtype::F16,
            Self::BF16 => safetensors::Dtype::BF16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
        }
    }

    /// Little-endian bytes → f32 (exact for all three types).
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Self::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Self::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Self::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }

    /// f32 → little-endian bytes, rounding to nearest even (exact for values that came from this type).
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            Self::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
            Self::BF16 => values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// Where one tensor lives inside a shard.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    pub dtype: String,
    pub shape: Vec<usize>,
    start: usize,
    end: usize,
}

pub struct Shard {
    pub path: PathBuf,
    map: Mmap,
    data_start: usize,
    pub tensors: BTreeMap<String, TensorEntry>,
    pub metadata: BTreeMap<String, String>,
}

impl Shard {
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let file_name = path.display().to_string();
        let corrupt = |reason: String| CheckpointError::Corrupt {
            file: file_name.clone(),
            reason,
        };
        let file = File::open(path).map_err(|source| CheckpointError::Io {
            file: file_name.clone(),
            source,
        })?;
        // Safety: the map is read-only; we never write to checkpoints we read.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| CheckpointError::Io {
            file: file_name.clone(),
            source,
        })?;
        if map.len() < 8 {
            return Err(corrupt(format!(
                "{} bytes is too short for a safetensors header",
                map.len()
            )));
        }
        let header_len = u64::from_le_bytes(map[..8].try_into().expect("8 bytes")) as usize;
        let data_start = 8usize
            .checked_add(header_len)
            .filter(|&end| end <= map.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "header claims {header_len} bytes but the file has {}",
                    map.len()
                ))
            })?;
        let header: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&map[8..data_start])
                .map_err(|e| corrupt(format!("header is not valid JSON: {e}")))?;
        let data_len = map.len() - data_start;
        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, value) in header {
            if name == "__metadata__" {
                if let Ok(m) = serde_json::from_value::<BTreeMap<String, String>>(value) {
                    metadata = m;
                }
                continue;
            }
            let raw: RawEntry = serde_json::from_value(value)
                .map_err(|e| corrupt(format!("tensor `{name}`: bad header entry: {e}")))?;
            let (start, end) = raw.data_offsets;
            if end < start || end > data_len {
                return Err(corrupt(format!(
                    "tensor `{name}` needs bytes {start}..{end} but only {data_len} data bytes are present (file truncated?)"
                )));
            }
            // Shapes from the file may be anything: a product past usize is an error, not a wrap.
            let numel = raw.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if let Some(dtype) = DiskDtype::parse(&raw.dtype) {
                let needed = numel.and_then(|n| n.checked_mul(dtype.size()));
                if needed != Some(end - start) {
                    return Err(corrupt(format!(
                        "tensor `{name}`: shape {:?} in {} needs {} bytes, header gives {}",
                        raw.shape,
                        raw.dtype,
                        needed.map_or("more than 2^64".to_string(), |n| n.to_string()),
                        end - start
                    )));
                }
            }
            tensors.insert(
                name,
                TensorEntry {
                    dtype: raw.dtype,
                    shape: raw.shape,
                    start,
                    end,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            map,
            data_start,
            tensors,
            metadata,
        })
    }

    pub fn bytes(&self, entry: &TensorEntry) -> &[u8] {
        &self.map[self.data_start + entry.start..self.data_start + entry.end]
    }

    pub fn data_len(&self) -> usize {
        self.map.len() - self.data_start
    }
}
