//! "Save model as…": a run's model into a new folder, complete or not at all. A full model is
//! copied file by file; a LoRA adapter folder is merged into its base and written in the base's
//! layout (the same as `mdu convert --merge` on the CPU).

use std::path::{Path, PathBuf};

use crate::checkpoint::adapter::is_adapter_dir;
use crate::checkpoint::ModelFiles;
use crate::device::{CpuBackend, DeviceChoice};

/// Writes the model in `src` as a full model folder `dest` (which must not exist or be empty).
pub fn save_model(src: &Path, dest: &Path) -> Result<PathBuf, String> {
    if is_adapter_dir(src) {
        merge_adapter(src, dest).map_err(|e| crate::events::error_message(&e))?;
        Ok(dest.to_path_buf())
    } else {
        copy_model(src, dest)
    }
}

/// The adapter's base with the adapter folded in, loaded on the CPU in f32 (refused with the
/// numbers when the machine's memory cannot hold it).
fn merge_adapter(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let files = ModelFiles::open(src)?;
    let model =
        files.load::<CpuBackend>(&Default::default(), &DeviceChoice::Cpu.memory_budget())?;
    let base = &files.checkpoint;
    crate::checkpoint::save(&model, &base.layout, Some(&base.dir), dest)?;
    Ok(())
}

/// Copies a saved model folder to `dest` (which must not exist yet), through a temporary sibling
/// renamed into place, so `dest` is either complete or absent.
fn copy_model(src: &Path, dest: &Path) -> Result<PathBuf, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", dest.display());
    if dest.exists()
        && std::fs::read_dir(dest)
            .map_err(|e| fail(&e))?
            .next()
            .is_some()
    {
        return Err(fail(
            &"the folder exists and is not empty; choose a new one",
        ));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.partial-{}",
        dest.file_name()
            .map_or("model".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let copy = || -> std::io::Result<()> {
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), tmp.join(entry.file_name()))?;
            }
        }
        if dest.exists() {
            std::fs::remove_dir(dest)?;
        }
        std::fs::rename(&tmp, dest)
    };
    copy().map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        fail(&e)
    })?;
    Ok(dest.to_path_buf())
}
