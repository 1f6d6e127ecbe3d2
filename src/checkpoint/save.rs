//! Writing checkpoints: a model in its input's layout, or its LoRA adapters as a PEFT folder,
//! each into a temporary folder renamed into place.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;

use super::shard::DiskDtype;
use super::{CheckpointError, WeightLayout, INDEX_FILE};
use crate::model::MaskedDiffusionLm;

/// Writes `model` as an HF checkpoint into `out`, reproducing `layout` (names, files, dtypes) and
/// copying every non-weight file (config, tokenizer, templates, remote code) from `source_dir`.
/// The folder is written beside `out` under a temporary name and renamed into place.
pub fn save<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    layout: &WeightLayout,
    source_dir: Option<&Path>,
    out: &Path,
) -> Result<(), CheckpointError> {
    write_new_folder(out, source_dir, |tmp| {
        write_folder(model, layout, source_dir, tmp)
    })
}

/// Runs `write` on a temporary folder beside `out` and renames it into place; refuses a non-empty
/// `out` and the folder being read (`source_dir`); on failure `out` is as it was.
pub(super) fn write_new_folder(
    out: &Path,
    source_dir: Option<&Path>,
    write: impl FnOnce(&Path) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    let out_name = out.display().to_string();
    let refuse = |reason: String| CheckpointError::Output {
        dir: out_name.clone(),
        reason,
    };
    if out.exists() {
        let non_empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
        if non_empty {
            return Err(refuse(
                "the folder exists and is not empty; choose a new folder".into(),
            ));
        }
    }
    if let Some(src) = source_dir {
        if let (Ok(a), Ok(b)) = (src.canonicalize(), out.canonicalize()) {
            if a == b {
                return Err(refuse("it is the checkpoint being read".into()));
            }
        }
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| CheckpointError::Write {
        file: parent.display().to_string(),
        source,
    })?;
    let tmp = parent.join(format!(
        ".{}.partial-{}",
        out.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let budget = fault::next_save_budget();
    let result = write(&tmp)
        .and_then(|()| fault::apply(&tmp, budget))
        .and_then(|()| {
            if out.exists() {
                std::fs::remove_dir(out).map_err(|source| CheckpointError::Write {
                    file: out_name.clone(),
                    source,
                })?;
            }
            std::fs::rename(&tmp, out).map_err(|source| CheckpointError::Write {
                file: out_name.clone(),
                source,
            })
        });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// A tensor ready for the safetensors writer.
pub(super) struct EncodedTensor {
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl safetensors::View for &EncodedTensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn write_folder<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    layout: &WeightLayout,
    source_dir: Option<&Path>,
    dir: &Path,
) -> Result<(), CheckpointError> {
    let write_err = |file: &Path| {
        let file = file.display().to_string();
        move |source| CheckpointError::Write { file, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let mut per_file: BTreeMap<String, Vec<(String, EncodedTensor)>> = BTreeMap::new();
    let mut total_size = 0u64;
    for (name, data) in model.named_tensors() {
        let dtype = layout.dtypes.get(&name).copied().unwrap_or(DiskDtype::F32);
        let file = layout
            .tensor_file
            .get(&name)
            .cloned()
            .unwrap_or_else(|| layout.files[0].clone());
        let values = data
            .clone()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 after convert");
        let bytes = dtype.encode(&values);
        total_size += bytes.len() as u64;
        per_file.entry(file).or_default().push((
            name,
            EncodedTensor {
                dtype: dtype.safetensors(),
                shape: data.shape.to_vec(),
                bytes,
            },
        ));
    }
    let metadata: std::collections::HashMap<String, String> =
        [("format".to_string(), "pt".to_string())].into();
    for (file, tensors) in &per_file {
        let path = dir.join(file);
        let views = tensors.iter().map(|(n, t)| (n.as_str(), t));
        safetensors::serialize_to_file(views, Some(metadata.clone()), &path).map_err(|e| {
            CheckpointError::Write {
                file: path.display().to_string(),
                source: std::io::Error::other(e),
            }
        })?;
    }
    if layout.sharded {
        let weight_map: BTreeMap<&str, &str> = per_file
            .iter()
            .flat_map(|(f, ts)| ts.iter().map(move |(n, _)| (n.as_str(), f.as_str())))
            .collect();
        let index = serde_json::json!({ "metadata": { "total_size": total_size }, "weight_map": weight_map });
        let path = dir.join(INDEX_FILE);
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&index).expect("json") + "\n",
        )
        .map_err(write_err(&path))?;
    }
    if let Some(src) = source_dir {
        copy_side_files(src, dir)?;
    }
    let config = dir.join("config.json");
    if !config.exists() {
        // A model that never had a config file (random init): write its config in HF form.
        let json = serde_json::to_string_pretty(&model.config.to_hf_json()).expect("json") + "\n";
        std::fs::write(&config, json).map_err(write_err(&config))?;
    }
    Ok(())
}

/// Copies config, tokenizer and any other non-weight files (remote code, generation config).
fn copy_side_files(src: &Path, dst: &Path) -> Result<(), CheckpointError> {
    let entries = std::fs::read_dir(src).map_err(|source| CheckpointError::Io {
        file: src.display().to_string(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let is_weight = name.ends_with(".safetensors") || name == INDEX_FILE;
        if path.is_file() && !is_weight {
            let target = dst.join(&name);
            std::fs::copy(&path, &target).map_err(|source| CheckpointError::Write {
                file: target.display().to_string(),
                source,
            })?;
        }
    }
    Ok(())
}

/// A test hook for failures while saving, compiled in so that the shipped binary is what is
/// tested: with `MDU_TEST_SAVE_FAULT=K:N`, the K-th model or adapter folder this process writes
/// (checkpoints and final models, counted from 1) runs out of disk space after N bytes, as a
/// full disk would: the file being written is cut there and the save fails with the OS's error.
mod fault {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    use super::CheckpointError;

    static SAVES: AtomicUsize = AtomicUsize::new(0);

    /// The byte budget of the save starting now, when it is the one to fail.
    pub fn next_save_budget() -> Option<u64> {
        static PLAN: OnceLock<Option<(usize, u64)>> = OnceLock::new();
        let plan = *PLAN.get_or_init(|| {
            let text = std::env::var("MDU_TEST_SAVE_FAULT").ok()?;
            let (k, n) = text.split_once(':')?;
            Some((k.trim().parse().ok()?, n.trim().parse().ok()?))
        });
        let save = SAVES.fetch_add(1, Ordering::SeqCst) + 1;
        plan.filter(|&(k, _)| k == save).map(|(_, n)| n)
    }

    /// Cuts the folder's files (in name order) where `budget` runs out, with ENOSPC's error.
    pub fn apply(dir: &Path, budget: Option<u64>) -> Result<(), CheckpointError> {
        let Some(mut left) = budget else {
            return Ok(());
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let len = std::fs::metadata(&file).map_or(0, |m| m.len());
            if len <= left {
                left -= len;
                continue;
            }
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&file) {
                let _ = f.set_len(left);
            }
            return Err(CheckpointError::Write {
                file: file.display().to_string(),
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        Ok(())
    }
}
