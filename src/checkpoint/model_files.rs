//! A model folder opened for use: its checked checkpoint headers and its tokenizer, which must
//! belong together, and, when the folder is a PEFT LoRA adapter, the adapter on top of its base.
//! The one way every command opens a model folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;

use super::adapter::{is_adapter_dir, AdapterFiles, ADAPTER_CONFIG};
use super::{Checkpoint, CheckpointError, MemoryBudget};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::TextTokenizer;

/// `config.json`, the safetensors headers and the tokenizer of one folder (no weights loaded).
pub struct ModelFiles {
    /// The folder as given (the adapter's, when it is one).
    pub dir: PathBuf,
    /// The full model's checkpoint (the adapter's base, when `dir` is an adapter).
    pub checkpoint: Checkpoint,
    pub tokenizer: TextTokenizer,
    /// A LoRA adapter merged into the base on load.
    pub adapter: Option<AdapterFiles>,
}

impl ModelFiles {
    /// Opens `dir`: a model folder (config, headers, tokenizer), or a PEFT adapter folder whose
    /// `base_model_name_or_path` names a model folder (absolute, or relative to the adapter).
    pub fn open(dir: &Path) -> Result<Self> {
        if !is_adapter_dir(dir) {
            return Self::open_model(dir);
        }
        let adapter = AdapterFiles::open(dir)?;
        let Some(base) = adapter.base.clone() else {
            bail!(
                "{}: `base_model_name_or_path` does not name a model folder here; give the base model and pass this folder as --adapter",
                dir.join(ADAPTER_CONFIG).display()
            );
        };
        let mut files = Self::open_model(&base)?;
        files.dir = dir.to_path_buf();
        files.adapter = Some(adapter);
        Ok(files)
    }

    /// [`ModelFiles::open`], or `dir` with the LoRA adapter folder `adapter` on top (`--adapter`).
    pub fn open_with(dir: &Path, adapter: Option<&Path>) -> Result<Self> {
        match adapter {
            Some(adapter) => Self::open_with_adapter(dir, adapter),
            None => Self::open(dir),
        }
    }

    fn open_with_adapter(base: &Path, adapter: &Path) -> Result<Self> {
        if !is_adapter_dir(adapter) {
            bail!(
                "{}: not a LoRA adapter folder (no {ADAPTER_CONFIG})",
                adapter.display()
            );
        }
        let mut files = Self::open_model(base)?;
        files.adapter = Some(AdapterFiles::open(adapter)?);
        Ok(files)
    }

    fn open_model(dir: &Path) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir)?;
        let tokenizer = TextTokenizer::from_dir(dir, &checkpoint.config)
            .with_context(|| format!("{}: tokenizer", dir.display()))?;
        if tokenizer.vocab_size() > checkpoint.config.vocab_size {
            bail!(
                "{}: the tokenizer has {} tokens but the model's embedding has {} rows; they do not belong together",
                dir.display(),
                tokenizer.vocab_size(),
                checkpoint.config.vocab_size
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            checkpoint,
            tokenizer,
            adapter: None,
        })
    }

    /// The model's weights on `device` (the adapter merged in), asking `stop` between tensors.
    pub fn load_until<B: Backend>(
        &self,
        device: &B::Device,
        budget: &MemoryBudget,
        stop: &dyn Fn() -> bool,
    ) -> Result<MaskedDiffusionLm<B>, CheckpointError> {
        let mut model = self.checkpoint.load_until::<B>(device, budget, stop)?;
        if let Some(adapter) = &self.adapter {
            model.adapters = Some(adapter.load::<B>(&self.checkpoint.config, device)?);
            model = model.merged();
        }
        Ok(model)
    }

    pub fn load<B: Backend>(
        &self,
        device: &B::Device,
        budget: &MemoryBudget,
    ) -> Result<MaskedDiffusionLm<B>, CheckpointError> {
        self.load_until(device, budget, &|| false)
    }
}
