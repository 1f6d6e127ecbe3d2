//! What a `checkpoint-N/trainer/` folder holds so fine-tuning and unlearning can resume: the
//! model and optimiser records (full precision) and the caller's state as `state.json`, written
//! last so that a folder without it is incomplete and ignored.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::data::write_atomic;
use crate::model::MaskedDiffusionLm;

type Rec = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Writes `checkpoint_dir/trainer/{model,optim,state.json}`.
pub fn save<B: AutodiffBackend, O: Optimizer<MaskedDiffusionLm<B>, B>>(
    checkpoint_dir: &Path,
    model: &MaskedDiffusionLm<B>,
    optim: &O,
    state: &impl Serialize,
) -> Result<()> {
    let trainer = checkpoint_dir.join("trainer");
    std::fs::create_dir_all(&trainer)?;
    match &model.adapters {
        // LoRA: the frozen base is the input checkpoint; only the adapters change.
        Some(adapters) => adapters
            .clone()
            .save_file(trainer.join("adapters"), &Rec::new())
            .context("saving the adapters record")?,
        None => model
            .clone()
            .save_file(trainer.join("model"), &Rec::new())
            .context("saving the model record")?,
    }
    Rec::new()
        .record(optim.to_record(), trainer.join("optim"))
        .context("saving the optimiser record")?;
    write_atomic(
        &trainer.join("state.json"),
        serde_json::to_string_pretty(state)?.as_bytes(),
    )?;
    Ok(())
}

/// Loads the model and optimiser records of `checkpoint_dir` into `model` and `optim`.
pub fn load<B: AutodiffBackend, O: Optimizer<MaskedDiffusionLm<B>, B>>(
    checkpoint_dir: &Path,
    model: MaskedDiffusionLm<B>,
    optim: O,
    device: &B::Device,
) -> Result<(MaskedDiffusionLm<B>, O)> {
    let mut model = model;
    let model = match model.adapters.take() {
        Some(adapters) => {
            let adapters = adapters
                .load_file(checkpoint_dir.join("trainer/adapters"), &Rec::new(), device)
                .with_context(|| format!("{}: adapters record", checkpoint_dir.display()))?;
            model.adapters = Some(adapters);
            model
        }
        None => model
            .load_file(checkpoint_dir.join("trainer/model"), &Rec::new(), device)
            .with_context(|| format!("{}: model record", checkpoint_dir.display()))?,
    };
    let record = Rec::new()
        .load(checkpoint_dir.join("trainer/optim").into(), device)
        .with_context(|| format!("{}: optimiser record", checkpoint_dir.display()))?;
    Ok((model, optim.load_record(record)))
}

/// The complete checkpoint folder under `dir` with the highest `step_of(state)`, and its state.
pub fn latest<S: DeserializeOwned>(
    dir: &Path,
    step_of: impl Fn(&S) -> usize,
) -> Result<Option<(PathBuf, S)>> {
    let mut best: Option<(PathBuf, S)> = None;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let file = entry.path().join("trainer/state.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            let state: S =
                serde_json::from_str(&text).with_context(|| file.display().to_string())?;
            if best
                .as_ref()
                .is_none_or(|b| step_of(&state) > step_of(&b.1))
            {
                best = Some((entry.path(), state));
            }
        }
    }
    Ok(best)
}
