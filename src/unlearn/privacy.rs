//! A run's privacy audit (`eval::audit`): set up once, with the retain-only model scored (or read
//! from the evaluation cache); the starting model audited before training (cached too), the
//! trained one after. It runs where the run has a holdout split and `privacy_audit` is on.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

use super::evaluation::eval_error;
use super::inputs::{Data, ResolvedRun};
use super::run_dir::RunDir;
use crate::checkpoint::MemoryBudget;
use crate::eval::audit::PrivacyAudit;
use crate::eval::privacy::{MiaSettings, PrivacyReport};
use crate::events::{Event, StopFlag};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::TextTokenizer;

pub struct RunAudit<'a> {
    audit: Option<PrivacyAudit>,
    run: &'a ResolvedRun,
    stop: StopFlag,
}

impl<'a> RunAudit<'a> {
    /// The audit of `run` (none without a holdout split, with the audit off, or with neither
    /// evaluation asked for); `model` gives the sampler settings.
    #[allow(clippy::too_many_arguments)]
    pub fn new<B: AutodiffBackend>(
        run: &'a ResolvedRun,
        data: &Data,
        model: &MaskedDiffusionLm<B::InnerBackend>,
        tokenizer: &TextTokenizer,
        budget: &MemoryBudget,
        device: &B::Device,
        sink: &mut dyn FnMut(Event),
        stop: &StopFlag,
    ) -> Result<Self> {
        let config = &run.config;
        let mut out = Self {
            audit: None,
            run,
            stop: stop.clone(),
        };
        let Some(holdout) = &data.holdout else {
            return Ok(out);
        };
        if !config.privacy_audit || !(config.eval_before || config.eval_after) {
            return Ok(out);
        }
        let settings = MiaSettings {
            mask_pairs: config.mia_mask_pairs,
            seed: config.seed,
            ..MiaSettings::default()
        };
        let mut audit = PrivacyAudit::new(
            &data.splits[0].items,
            holdout,
            settings,
            config.eval_max_items,
            &config.generation,
            model,
            tokenizer,
        )?;
        if let Some(dir) = &run.inputs.retain_model {
            sink(Event::Phase {
                phase: "privacy audit: scoring the retain-only model".into(),
            });
            let stop = stop.clone();
            let source = audit.score_retain_model::<B>(
                dir,
                budget,
                device,
                &run.device.to_string(),
                run.eval_cache,
                &move || stop.is_set(),
            )?;
            if let Some(source) = source {
                sink(Event::Phase {
                    phase: format!("privacy audit, the retain-only model: {source}"),
                });
            }
        }
        out.audit = Some(audit);
        Ok(out)
    }

    /// The starting model's audit (from the cache when it was audited so before), unless the
    /// run does not evaluate before or resumes with its "before" evaluation on record.
    pub fn before<B: AutodiffBackend>(
        &self,
        model: &MaskedDiffusionLm<B>,
        run_dir: &RunDir,
        device: &B::Device,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Option<PrivacyReport>> {
        let (run, config) = (self.run, &self.run.config);
        let Some(audit) = &self.audit else {
            return Ok(None);
        };
        if !config.eval_before || (run.resume && run_dir.read_before()?.is_some()) {
            return Ok(None);
        }
        let stop = self.stop.clone();
        let (report, source) = audit
            .run_cached(
                model,
                &run.inputs.checkpoint,
                &config.lora,
                device,
                &run.device.to_string(),
                run.eval_cache,
                &move || stop.is_set(),
            )
            .map_err(|e| eval_error(e, sink, run_dir))?;
        sink(Event::Phase {
            phase: match source {
                Some(source) => format!("privacy audit (before): {source}"),
                None => "privacy audit (before)".into(),
            },
        });
        Ok(Some(report))
    }

    /// The trained model's audit.
    pub fn after<B: AutodiffBackend>(
        &self,
        model: &MaskedDiffusionLm<B>,
        run_dir: &RunDir,
        device: &B::Device,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Option<PrivacyReport>> {
        let Some(audit) = &self.audit else {
            return Ok(None);
        };
        sink(Event::Phase {
            phase: "privacy audit (after)".into(),
        });
        let stop = self.stop.clone();
        audit
            .run(model, device, &move || stop.is_set())
            .map(Some)
            .map_err(|e| eval_error(e, sink, run_dir))
    }
}
