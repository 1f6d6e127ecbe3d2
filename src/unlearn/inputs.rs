//! What a run reads: its config resolved once into paths and a device ([`ResolvedRun`], made by
//! the same function for the CLI and the window), and the question–answer files tokenized into
//! training examples and evaluation splits.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::config::UnlearnConfig;
use crate::data::{read_qa_file, QaItem};
use crate::demo::embedded::DemoPaths;
use crate::device::DeviceChoice;
use crate::diffusion::batch::SftExample;
use crate::eval::protocol::{EvalSplit, SplitRole};
use crate::tokenizer::TextTokenizer;

/// Where a run's inputs are, once the demo (if asked for) is unpacked.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub checkpoint: PathBuf,
    pub forget: PathBuf,
    pub retain: PathBuf,
    pub eval_retain: Option<PathBuf>,
    pub eval_files: Vec<PathBuf>,
    pub retain_model: Option<PathBuf>,
    pub holdout: Option<PathBuf>,
}

impl Inputs {
    pub fn resolve(config: &UnlearnConfig) -> Result<Self> {
        if config.demo {
            let demo = crate::demo::embedded::unpack()?;
            return Ok(Self::with_demo(config, &demo));
        }
        let need = |p: &Option<PathBuf>, what: &str| {
            p.clone().with_context(|| {
                format!("no {what}: pass --{what} (or --demo for the embedded demo)")
            })
        };
        Ok(Self {
            checkpoint: need(&config.checkpoint, "checkpoint")?,
            forget: need(&config.forget, "forget")?,
            retain: need(&config.retain, "retain")?,
            eval_retain: config.eval_retain.clone(),
            eval_files: config.eval_files.clone(),
            retain_model: config.retain_model.clone(),
            holdout: config.holdout.clone(),
        })
    }

    /// The unpacked demo's files, each replaced by the config's own path where it names one.
    pub fn with_demo(config: &UnlearnConfig, demo: &DemoPaths) -> Self {
        Self {
            checkpoint: config.checkpoint.clone().unwrap_or(demo.model.clone()),
            forget: config.forget.clone().unwrap_or(demo.forget.clone()),
            retain: config.retain.clone().unwrap_or(demo.retain.clone()),
            eval_retain: config
                .eval_retain
                .clone()
                .or(Some(demo.retain_eval.clone())),
            eval_files: if config.eval_files.is_empty() {
                vec![demo.real_people_eval.clone(), demo.world_facts_eval.clone()]
            } else {
                config.eval_files.clone()
            },
            retain_model: config
                .retain_model
                .clone()
                .or(Some(demo.retain_model.clone())),
            holdout: config.holdout.clone().or(Some(demo.holdout.clone())),
        }
    }

    /// Writes these paths into `config` (demo off): what the run folder's `config.toml` records.
    pub fn write_into(&self, config: &mut UnlearnConfig) {
        config.demo = false;
        config.checkpoint = Some(self.checkpoint.clone());
        config.forget = Some(self.forget.clone());
        config.retain = Some(self.retain.clone());
        config.eval_retain = self.eval_retain.clone();
        config.eval_files = self.eval_files.clone();
        config.retain_model = self.retain_model.clone();
        config.holdout = self.holdout.clone();
    }
}

/// A run as the engine executes it: the settings, the files they name, the device, the folder.
/// Made once, by [`ResolvedRun::new`], whoever starts the run.
#[derive(Clone, Debug)]
pub struct ResolvedRun {
    pub config: UnlearnConfig,
    pub inputs: Inputs,
    pub device: DeviceChoice,
    pub run_dir: PathBuf,
    /// Continue from the newest checkpoint in `run_dir`.
    pub resume: bool,
    /// Reuse and keep cached evaluations (the time probe of `cost.rs` turns it off).
    pub eval_cache: bool,
    /// This run is a time probe of that run: say what that run would reuse (`Event::Reuse`).
    pub probe_of: Option<UnlearnConfig>,
}

impl ResolvedRun {
    /// Parses the device and resolves the inputs (unpacking the demo when the config asks for it).
    pub fn new(config: UnlearnConfig, run_dir: PathBuf, resume: bool) -> Result<Self> {
        let device = DeviceChoice::parse(&config.device).map_err(anyhow::Error::msg)?;
        let inputs = Inputs::resolve(&config)?;
        Ok(Self {
            config,
            inputs,
            device,
            run_dir,
            resume,
            eval_cache: true,
            probe_of: None,
        })
    }
}

/// The tokenized training sets and the evaluation splits (forget, retain, utility files).
pub struct Data {
    pub forget: Vec<SftExample>,
    pub retain: Vec<SftExample>,
    pub splits: Vec<EvalSplit>,
    /// The holdout items of the privacy audit, when a holdout file is given.
    pub holdout: Option<Vec<QaItem>>,
    /// Training items cut to the model's positions (`truncate`).
    pub truncated: usize,
}

impl Data {
    /// Reads and tokenizes the files; an item longer than `context` tokens (the model's
    /// positions) is an error naming its file, item and length, or with `config.truncate` has
    /// its answer cut to fit (counted in `truncated`).
    pub fn load(
        inputs: &Inputs,
        config: &UnlearnConfig,
        tokenizer: &TextTokenizer,
        context: usize,
    ) -> Result<Self> {
        let forget_items = read_qa_file(&inputs.forget)?;
        if forget_items.is_empty() {
            bail!(
                "{}: the forget set is empty; nothing to unlearn",
                inputs.forget.display()
            );
        }
        let retain_items = read_qa_file(&inputs.retain)?;
        if retain_items.is_empty() && config.method.uses_retain() {
            bail!(
                "{}: the retain set is empty, and {} needs retain data",
                inputs.retain.display(),
                config.method.label()
            );
        }
        let limit = Limit {
            context,
            truncate: config.truncate,
        };
        let (forget, cut_forget) = encode(tokenizer, &forget_items, &inputs.forget, limit)?;
        let (retain, cut_retain) = encode(tokenizer, &retain_items, &inputs.retain, limit)?;
        let retain_eval = match &inputs.eval_retain {
            Some(p) => read_qa_file(p)?,
            None => evenly_spaced(&retain_items, config.eval_retain_items),
        };
        let mut splits = vec![
            EvalSplit {
                name: "forget".into(),
                role: SplitRole::Forget,
                items: forget_items,
            },
            EvalSplit {
                name: "retain".into(),
                role: SplitRole::Retain,
                items: retain_eval,
            },
        ];
        for file in &inputs.eval_files {
            splits.push(EvalSplit::from_file(file)?);
        }
        let holdout = match &inputs.holdout {
            Some(p) => Some(read_qa_file(p)?).filter(|items| !items.is_empty()),
            None => None,
        };
        Ok(Self {
            forget,
            retain,
            splits,
            holdout,
            truncated: cut_forget + cut_retain,
        })
    }
}

/// The model's positions, and whether longer items are cut or refused.
#[derive(Clone, Copy)]
struct Limit {
    context: usize,
    truncate: bool,
}

/// Tokenizes `items`; returns the examples and how many were cut.
fn encode(
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    file: &Path,
    limit: Limit,
) -> Result<(Vec<SftExample>, usize)> {
    let mut cut = 0;
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let mut example = SftExample::encode(tokenizer, it)
            .with_context(|| format!("{}: item {}", file.display(), i + 1))?;
        let tokens = example.prompt.len() + example.answer.len();
        if tokens > limit.context {
            // The answer keeps at least one token; a question alone too long cannot be cut.
            let room = limit.context.saturating_sub(example.prompt.len());
            if !limit.truncate || room == 0 {
                bail!(
                    "{}: item {}: question and answer are {tokens} tokens, more than the model's {} positions{}",
                    file.display(),
                    i + 1,
                    limit.context,
                    if limit.truncate { " (the question alone does not fit)" } else { " (--truncate cuts answers to fit)" }
                );
            }
            example.answer.truncate(room);
            cut += 1;
        }
        out.push(example);
    }
    Ok((out, cut))
}

/// `n` items spread evenly over `items` (TOFU evaluates a retain subset of the forget set's size).
pub fn evenly_spaced(items: &[QaItem], n: usize) -> Vec<QaItem> {
    if n >= items.len() {
        return items.to_vec();
    }
    (0..n).map(|i| items[i * items.len() / n].clone()).collect()
}
