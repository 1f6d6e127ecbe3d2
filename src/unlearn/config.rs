//! A run's settings: defaults, then `--config run.toml`, then `--set key=value`, then the explicit
//! flags. The resolved config is written into the run directory, so a run can be repeated.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::methods::{Method, MethodParams};
use crate::eval::protocol::Generation;
pub use crate::model::{LoraSettings, LoraTarget};
use crate::train::schedule::LrSchedule;
pub use crate::train::schedule::LrShape;
pub use crate::train::MomentPrecision;

/// Per-block activation checkpointing (`checkpointing` in a run config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Checkpointing {
    /// On when one step would not fit in the device's free memory without it.
    #[default]
    Auto,
    /// Always: each block is run twice, and only its input is kept.
    On,
    /// Never: every activation is kept (the fastest step).
    Off,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnlearnConfig {
    pub method: Method,
    /// τ, η, KL direction, α, γ, β, special-token exclusion.
    pub params: MethodParams,
    /// Model folder; `None` with `demo = true` uses the embedded demo.
    pub checkpoint: Option<PathBuf>,
    pub demo: bool,
    pub forget: Option<PathBuf>,
    pub retain: Option<PathBuf>,
    /// Extra evaluation files (utility splits: names containing "real" / "world" are recognised).
    pub eval_files: Vec<PathBuf>,
    /// The retain set to evaluate on (TOFU's retain_perturbed); default: the first `eval_retain_items` of `retain`.
    pub eval_retain: Option<PathBuf>,
    pub eval_retain_items: usize,
    /// The retain-only model, for TOFU forget quality, privleak and the Reference attack.
    pub retain_model: Option<PathBuf>,
    /// Items the model never saw (TOFU's `holdout` files), for the privacy audit: forget vs
    /// holdout membership inference.
    pub holdout: Option<PathBuf>,
    /// Run the privacy audit (membership inference, privleak, extraction strength, exact
    /// memorisation) before and after training, where a holdout file is given.
    pub privacy_audit: bool,
    /// Pairs of complementary maskings per answer in the privacy audit.
    pub mia_mask_pairs: usize,
    pub device: String,
    pub seed: u64,
    pub steps: usize,
    pub learning_rate: f64,
    /// Forget rows per optimiser step (the retain batch has as many).
    pub batch_size: usize,
    pub grad_accum: usize,
    pub warmup_steps: usize,
    /// What the learning rate does after warm-up.
    pub lr_schedule: LrShape,
    pub weight_decay: f64,
    /// Global-norm gradient clipping; 0 disables it.
    pub max_grad_norm: f64,
    /// Steps between live evaluations (0: none).
    pub live_every: usize,
    pub live_items: usize,
    pub live_mc_samples: usize,
    pub eval_before: bool,
    pub eval_after: bool,
    pub eval_mc_samples: usize,
    /// Full evaluations score at most this many items per split (`None`: all).
    pub eval_max_items: Option<usize>,
    /// Full evaluations also compute the TOFU-protocol numbers (probability, truth ratios, utility, forget quality).
    pub eval_tofu: bool,
    pub generation: Generation,
    /// Steps between checkpoints (0: only the final model).
    pub save_every: usize,
    /// Checkpoints kept: the newest this many, plus the best one (0: every one).
    pub keep_checkpoints: usize,
    /// Stop early once the live forget ROUGE-L recall is at or below this value.
    pub stop_at_forget_rouge: Option<f64>,
    /// Warn when live retain ROUGE-L falls below this fraction of its starting value.
    pub collapse_fraction: f64,
    /// Cut training items longer than the model's positions (their answers), with one warning,
    /// instead of refusing them.
    pub truncate: bool,
    /// Train LoRA adapters on a frozen base instead of every weight (`[lora]`).
    pub lora: Option<LoraSettings>,
    /// Per-block activation checkpointing: `auto` turns it on when a step would not fit.
    pub checkpointing: Checkpointing,
    /// What AdamW keeps its moments in: `f32`, or `bf16` (stochastically rounded; half the
    /// memory where the device stores bf16).
    pub moments: MomentPrecision,
    /// After training, try to get each forget answer back along other decoding paths and report
    /// the worst case (`inside::leakage`).
    pub leakage_probe: bool,
    /// At each live evaluation, the mean KL per token role on the live forget items.
    pub live_role_kl: bool,
}

impl Default for UnlearnConfig {
    fn default() -> Self {
        Self {
            method: Method::Mdu,
            params: MethodParams::default(),
            checkpoint: None,
            demo: false,
            forget: None,
            retain: None,
            eval_files: Vec::new(),
            eval_retain: None,
            eval_retain_items: 64,
            retain_model: None,
            holdout: None,
            privacy_audit: true,
            mia_mask_pairs: 4,
            device: "auto".into(),
            seed: 0,
            // Tuned on the embedded demo (README, "Unlearning results"); the paper's settings for
            // real checkpoints are in configs/.
            steps: 100,
            learning_rate: 2e-4,
            batch_size: 8,
            grad_accum: 1,
            warmup_steps: 0,
            lr_schedule: LrShape::Constant,
            weight_decay: 0.0,
            max_grad_norm: 0.0,
            live_every: 25,
            live_items: 10,
            live_mc_samples: 8,
            eval_before: true,
            eval_after: true,
            // 4 maskings per answer keep a demo run's full evaluation near 25 s on 2 cores;
            // `mdu eval` uses 8, the paper configs 128.
            eval_mc_samples: 4,
            eval_max_items: None,
            eval_tofu: true,
            generation: Generation::Demo { margin: 4 },
            save_every: 0,
            keep_checkpoints: 2,
            stop_at_forget_rouge: None,
            collapse_fraction: 0.5,
            truncate: false,
            lora: None,
            checkpointing: Checkpointing::Auto,
            moments: MomentPrecision::F32,
            leakage_probe: true,
            live_role_kl: true,
        }
    }
}

impl UnlearnConfig {
    /// Learning rate of optimiser step `step` (0-based): linear warm-up, then `lr_schedule`
    /// (a decay reaches 0 at the last step: HF Trainer's `linear`, the reference scripts' default).
    pub fn lr_at(&self, step: usize) -> f64 {
        LrSchedule {
            peak: self.learning_rate,
            warmup_steps: self.warmup_steps,
            total_steps: self.steps,
            floor_ratio: 0.0,
            shape: self.lr_schedule,
        }
        .at(step)
    }

    /// Reads a TOML file over the defaults; unknown keys are errors that list the known ones.
    /// Why checkpointing set to `on` cannot run with these settings: a recomputed block would
    /// draw new LoRA dropout masks.
    pub fn checkpointing_conflict(&self) -> Option<String> {
        let dropout = self.lora.as_ref().map_or(0.0, |l| l.dropout);
        (self.checkpointing == Checkpointing::On && dropout > 0.0).then(|| {
            format!(
                "checkpointing = \"on\" cannot run with lora.dropout = {dropout}: a recomputed block would draw new dropout masks; set the dropout to 0 or checkpointing to \"off\""
            )
        })
    }

    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let mut config = Self::from_toml_str(&text, &path.display().to_string())?;
        // Relative paths in a config file are relative to the file.
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// A config from TOML text (`origin` names it in errors); relative paths stay relative.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let mut value = toml::Value::try_from(Self::default())?;
        let user: toml::Table =
            toml::from_str(text).with_context(|| format!("{origin}: not valid TOML"))?;
        merge(&mut value, toml::Value::Table(user));
        value
            .try_into()
            .with_context(|| format!("{origin}: invalid setting"))
    }

    /// Applies `key=value` (dotted keys reach nested tables: `params.tau=0.5`; `tau=0.5` works too).
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let (key, raw) = assignment
            .split_once('=')
            .with_context(|| format!("--set {assignment}: expected key=value"))?;
        let key = key.trim();
        let mut value = toml::Value::try_from(&*self)?;
        let param_keys = toml::Value::try_from(MethodParams::default())?;
        let path: Vec<&str> = if !key.contains('.')
            && (key == "rmu_layer" || param_keys.as_table().is_some_and(|t| t.contains_key(key)))
        {
            vec!["params", key]
        } else {
            key.split('.').collect()
        };
        let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut t) => t.remove("v").expect("parsed above"),
            Err(_) => toml::Value::String(raw.trim().to_string()),
        };
        let mut slot = &mut value;
        for (i, part) in path.iter().enumerate() {
            let table = slot
                .as_table_mut()
                .with_context(|| format!("--set {key}: {} is not a table", path[..i].join(".")))?;
            if !table.contains_key(*part) && !optional_key(part) {
                let known: Vec<&String> = table.keys().collect();
                bail!("--set {key}: unknown setting {part:?}; known: {known:?}");
            }
            slot = table
                .entry(part.to_string())
                .or_insert(toml::Value::Boolean(false));
        }
        *slot = parsed;
        *self = value
            .try_into()
            .with_context(|| format!("--set {assignment}: invalid value"))?;
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        for p in self.paths_mut() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The training and evaluation knobs alone: every path, `demo` and the device cleared.
    pub fn knobs(&self) -> Self {
        Self {
            device: String::new(),
            ..Self::default().with_knobs(self)
        }
    }

    /// `knobs`'s training and evaluation settings with this config's inputs: its paths, `demo`
    /// and device.
    pub fn with_knobs(&self, knobs: &Self) -> Self {
        Self {
            checkpoint: self.checkpoint.clone(),
            forget: self.forget.clone(),
            retain: self.retain.clone(),
            eval_files: self.eval_files.clone(),
            eval_retain: self.eval_retain.clone(),
            retain_model: self.retain_model.clone(),
            holdout: self.holdout.clone(),
            device: self.device.clone(),
            demo: self.demo,
            ..knobs.clone()
        }
    }

    /// Every path the config names: the model, data and evaluation files, the retain-only model.
    pub fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [
            &mut self.checkpoint,
            &mut self.forget,
            &mut self.retain,
            &mut self.eval_retain,
            &mut self.retain_model,
            &mut self.holdout,
        ]
        .into_iter()
        .flatten()
        .chain(self.eval_files.iter_mut())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialise: {e}"))
    }
}

/// Keys that serialise to nothing when `None` and so are absent from the defaults' table.
fn optional_key(key: &str) -> bool {
    matches!(
        key,
        "checkpoint"
            | "rmu_layer"
            | "forget"
            | "retain"
            | "eval_retain"
            | "retain_model"
            | "holdout"
            | "stop_at_forget_rouge"
            | "eval_max_items"
            | "lora"
    )
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_table() && v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}
