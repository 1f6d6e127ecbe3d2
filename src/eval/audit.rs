//! A privacy audit (`privacy.rs` computes its numbers): the forget split against a holdout split
//! of items the model never saw, with the retain-only model as the reference when one is given.
//! `mdu unlearn` runs it before and after training where a holdout file is given (the demo ships
//! one); `mdu eval --holdout` runs it once. The retain-only model's statistics and the starting
//! model's audit are kept in the evaluation cache (and recorded with the demo).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use super::cache::{self, erased::Part, Source};
use super::privacy::{
    attack_aucs, attack_scores, grad_norms, item_stats, memorisation, AttackScores, ItemStats,
    MiaSettings, PrivacyReport,
};
use super::protocol::{sampler_config, EvalError};
use super::report::Generation;
use crate::checkpoint::MemoryBudget;
use crate::data::QaItem;
use crate::diffusion::batch::SftExample;
use crate::diffusion::sampler::{SamplerConfig, SamplerTokens};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::TextTokenizer;

/// The items of one side of the audit, and their encodings.
struct Side {
    items: Vec<QaItem>,
    examples: Vec<SftExample>,
}

impl Side {
    fn new(tokenizer: &TextTokenizer, items: Vec<QaItem>) -> Result<Self> {
        Ok(Self {
            examples: items
                .iter()
                .map(|it| SftExample::encode(tokenizer, it))
                .collect::<Result<_, _>>()?,
            items,
        })
    }

    fn answers(&self) -> Vec<&str> {
        self.items.iter().map(|it| it.answer.as_str()).collect()
    }
}

/// The retain-only model's statistics on both sides, and its AUCs.
#[derive(Clone, Serialize, Deserialize)]
struct RetainOnly {
    forget: Vec<ItemStats>,
    holdout: Vec<ItemStats>,
    auc: BTreeMap<String, f64>,
}

pub struct PrivacyAudit {
    forget: Side,
    holdout: Side,
    settings: MiaSettings,
    tokens: SamplerTokens,
    sampler: SamplerConfig,
    retain_only: Option<RetainOnly>,
}

impl PrivacyAudit {
    /// The audit of `forget` against `holdout`, both cut to `max_items`, like every full
    /// evaluation; ES and EM use `generation`'s sampler settings.
    pub fn new<B: Backend>(
        forget: &[QaItem],
        holdout: &[QaItem],
        settings: MiaSettings,
        max_items: Option<usize>,
        generation: &Generation,
        model: &MaskedDiffusionLm<B>,
        tokenizer: &TextTokenizer,
    ) -> Result<Self> {
        let cut = |items: &[QaItem]| -> Vec<QaItem> {
            items[..max_items.unwrap_or(usize::MAX).min(items.len())].to_vec()
        };
        let (forget, holdout) = (cut(forget), cut(holdout));
        Ok(Self {
            sampler: sampler_config(model, tokenizer, &forget, generation)?,
            forget: Side::new(tokenizer, forget)?,
            holdout: Side::new(tokenizer, holdout)?,
            settings,
            tokens: SamplerTokens::from(&tokenizer.special),
            retain_only: None,
        })
    }

    fn pair(&self) -> (u32, u32) {
        (self.tokens.mask, self.tokens.pad)
    }

    /// The cache key of auditing the model in `model_dir` (`None` when caching is off).
    fn key(
        &self,
        model_dir: &Path,
        device_name: &str,
        extra: &dyn Part,
        use_cache: bool,
    ) -> Option<String> {
        let sampler = (
            self.sampler.max_new_tokens,
            self.sampler.steps,
            self.sampler.block_size,
            self.sampler.temperature,
        );
        let parts: [&dyn Part; 6] = [
            &self.forget.items,
            &self.holdout.items,
            &self.settings,
            &sampler,
            &device_name,
            extra,
        ];
        cache::key(model_dir, &parts).filter(|_| use_cache)
    }

    /// Scores both sides with the retain-only model in `dir` (its tokenizer must encode the items
    /// as the run's does: the same model family), or reads its scores from the cache.
    pub fn score_retain_model<B: AutodiffBackend>(
        &mut self,
        dir: &Path,
        budget: &MemoryBudget,
        device: &B::Device,
        device_name: &str,
        use_cache: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Source>> {
        let key = self.key(dir, device_name, &"retain-only", use_cache);
        if let Some((scored, source)) = key
            .as_ref()
            .and_then(|k| cache::load::<RetainOnly>("privacy-retain-only", k))
        {
            self.retain_only = Some(scored);
            return Ok(Some(source));
        }
        let files = crate::checkpoint::ModelFiles::open(dir)?;
        let model = match files.load_until::<B>(device, budget, stop) {
            Err(crate::checkpoint::CheckpointError::Stopped) => {
                return Err(EvalError::Stopped.into())
            }
            loaded => {
                loaded.with_context(|| format!("{}: the retain-only model", dir.display()))?
            }
        };
        let (forget, forget_scores) = self.side(&model, &self.forget, None, device);
        let (holdout, holdout_scores) = self.side(&model, &self.holdout, None, device);
        let auc = attack_aucs(&forget_scores, &holdout_scores);
        let scored = RetainOnly {
            forget,
            holdout,
            auc,
        };
        if let Some(k) = &key {
            cache::store("privacy-retain-only", k, &scored);
        }
        self.retain_only = Some(scored);
        Ok(None)
    }

    /// The audit of the starting model in `checkpoint` (from the cache when it was audited with
    /// these items and settings before); `extra` is whatever else changes the numbers (LoRA's
    /// settings: GradNorm sees only the trainable parameters).
    #[allow(clippy::too_many_arguments)]
    pub fn run_cached<B: AutodiffBackend>(
        &self,
        model: &MaskedDiffusionLm<B>,
        checkpoint: &Path,
        extra: &dyn Part,
        device: &B::Device,
        device_name: &str,
        use_cache: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<(PrivacyReport, Option<Source>), EvalError> {
        let reference = self.retain_only.as_ref().map(|r| &r.auc);
        let key = self.key(
            checkpoint,
            device_name,
            &(extra.json(), reference),
            use_cache,
        );
        if let Some((report, source)) = key
            .as_ref()
            .and_then(|k| cache::load::<PrivacyReport>("privacy-before", k))
        {
            return Ok((report, Some(source)));
        }
        let report = self.run(model, device, stop)?;
        if let Some(k) = &key {
            cache::store("privacy-before", k, &report);
        }
        Ok((report, None))
    }

    /// One side's statistics under `model` and every attack's scores on them (Reference against
    /// `reference`, the retain-only model's statistics on the same items, where given).
    fn side<B: AutodiffBackend>(
        &self,
        model: &MaskedDiffusionLm<B>,
        side: &Side,
        reference: Option<&[ItemStats]>,
        device: &B::Device,
    ) -> (Vec<ItemStats>, AttackScores) {
        let (settings, pair) = (&self.settings, self.pair());
        let stats = item_stats(&model.valid(), &side.examples, pair, settings, device);
        let grads = grad_norms(model, &side.examples, pair, settings, device);
        let scores = attack_scores(&stats, &side.answers(), Some(&grads), reference, settings.k);
        (stats, scores)
    }

    /// The audit of `model`.
    pub fn run<B: AutodiffBackend>(
        &self,
        model: &MaskedDiffusionLm<B>,
        device: &B::Device,
        stop: &dyn Fn() -> bool,
    ) -> Result<PrivacyReport, EvalError> {
        let reference = self.retain_only.as_ref();
        let (_, forget) = self.side(
            model,
            &self.forget,
            reference.map(|r| &r.forget[..]),
            device,
        );
        if stop() {
            return Err(EvalError::Stopped);
        }
        let (_, holdout) = self.side(
            model,
            &self.holdout,
            reference.map(|r| &r.holdout[..]),
            device,
        );
        let auc = attack_aucs(&forget, &holdout);
        let memorised = memorisation(
            &model.valid(),
            &self.forget.examples,
            &self.tokens,
            &self.sampler,
            self.settings.batch_size,
            device,
            stop,
        )
        .ok_or(EvalError::Stopped)?;
        let mean = |f: fn(&(f64, f64)) -> f64| {
            (!memorised.is_empty())
                .then(|| memorised.iter().map(f).sum::<f64>() / memorised.len() as f64)
        };
        let privleak = reference.and_then(|r| {
            Some(crate::eval::mia::privleak(
                *auc.get("mia_min_k")?,
                *r.auc.get("mia_min_k")?,
            ))
        });
        Ok(PrivacyReport {
            estimator: self.settings.describe(),
            forget_items: self.forget.examples.len(),
            holdout_items: self.holdout.examples.len(),
            auc,
            retain_only_auc: reference.map(|r| r.auc.clone()).unwrap_or_default(),
            privleak,
            extraction_strength: mean(|m| m.0),
            exact_memorization: mean(|m| m.1),
            forget_extraction: memorised.iter().map(|m| m.0).collect(),
        })
    }
}
