//! A model folder opened for use: its checked checkpoint headers and its tokenizer, which must
//! belong together. The one way every command opens a model folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::Checkpoint;
use crate::tokenizer::TextTokenizer;

/// `config.json`, the safetensors headers and the tokenizer of one folder (no weights loaded).
pub struct ModelFiles {
    pub dir: PathBuf,
    pub checkpoint: Checkpoint,
    pub tokenizer: TextTokenizer,
}

impl ModelFiles {
    /// Opens `dir`: the checkpoint's config and headers, then the tokenizer, which may not have
    /// more tokens than the model's embedding has rows.
    pub fn open(dir: &Path) -> Result<Self> {
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
        })
    }
}
