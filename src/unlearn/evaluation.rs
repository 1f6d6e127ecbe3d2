//! A run's evaluations: the full ones before and after training (with the evaluation cache and
//! the retain-only model's truth ratios for forget quality) and the cheap live ones between steps.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;

use super::config::UnlearnConfig;
use super::inputs::{Data, Inputs};
use super::run_dir::RunDir;
use super::Stopped;
use crate::checkpoint::MemoryBudget;
use crate::data::{write_atomic, QaItem};
use crate::eval::cache;
use crate::eval::privacy::PrivacyReport;
use crate::eval::protocol::{
    evaluate, forget_quality, retain_model_truth_ratios, sampler_config, EvalError, EvalReport,
    EvalSettings, EvalSplit, SampleDetail, SplitRole,
};
use crate::eval::report::WorstPath;
use crate::events::{Event, StopFlag};
use crate::inside::roles::{RoleRule, STRUCTURAL_SHARE};
use crate::inside::trace::{role_means, trace_items, RoleMean};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::TextTokenizer;

/// What every evaluation of one run shares.
pub struct Evaluation<'a, B: Backend> {
    tokenizer: &'a TextTokenizer,
    splits: &'a [EvalSplit],
    live_splits: Vec<EvalSplit>,
    full: EvalSettings,
    live: EvalSettings,
    /// The retain-only model's raw truth ratios on the forget split, when forget quality is asked for.
    retain_model_tr: Option<Vec<f64>>,
    device: &'a B::Device,
    device_name: &'a str,
    stop: StopFlag,
    /// Reuse and keep cached evaluations (off for the time probe, which must measure them).
    pub use_cache: bool,
    /// Run the leakage probe after training.
    leakage_probe: bool,
}

impl<'a, B: Backend> Evaluation<'a, B> {
    pub fn new(
        config: &UnlearnConfig,
        data: &'a Data,
        tokenizer: &'a TextTokenizer,
        device: &'a B::Device,
        device_name: &'a str,
        stop: &StopFlag,
    ) -> Self {
        let full = EvalSettings {
            generation: config.generation.clone(),
            max_items: config.eval_max_items,
            tofu: config.eval_tofu,
            ..EvalSettings::full(config.eval_mc_samples)
        };
        let live = EvalSettings {
            generation: config.generation.clone(),
            ..EvalSettings::live(config.live_mc_samples, config.live_items)
        };
        let live_splits = data
            .splits
            .iter()
            .filter(|s| matches!(s.role, SplitRole::Forget | SplitRole::Retain))
            .cloned()
            .collect();
        Self {
            tokenizer,
            splits: &data.splits,
            live_splits,
            full,
            live,
            retain_model_tr: None,
            device,
            device_name,
            stop: stop.clone(),
            use_cache: true,
            leakage_probe: config.leakage_probe,
        }
    }

    /// The splits as the cache keys name them.
    fn split_key(&self) -> Vec<(&String, SplitRole, &Vec<QaItem>)> {
        self.splits
            .iter()
            .map(|s| (&s.name, s.role, &s.items))
            .collect()
    }

    /// What this evaluation would reuse rather than compute, without computing anything: the
    /// retain-only model's truth ratios (true when there are none to score) and the "before"
    /// report of the model in `checkpoint`.
    pub fn reusable(&self, inputs: &Inputs, config: &UnlearnConfig, checkpoint: &Path) -> Event {
        let scored = config.eval_tofu && (config.eval_before || config.eval_after);
        let tr: Option<Option<Vec<f64>>> = match (&inputs.retain_model, scored) {
            (Some(dir), true) => {
                cache::key(dir, &[&self.split_key()[0], &self.full, &self.device_name])
                    .and_then(|k| cache::load::<Vec<f64>>("retain-model-tr", &k))
                    .map(|(tr, _)| Some(tr))
            }
            _ => Some(None),
        };
        let before = tr.as_ref().is_some_and(|tr| {
            cache::key(
                checkpoint,
                &[&self.split_key(), &self.full, &self.device_name, tr],
            )
            .and_then(|k| {
                cache::load::<(EvalReport, BTreeMap<String, Vec<SampleDetail>>)>("before", &k)
            })
            .is_some()
        });
        Event::Reuse {
            retain_model: tr.is_some(),
            before,
        }
    }

    /// Scores the retain-only model once (or reads its scores from the cache), when the run
    /// evaluates the TOFU protocol before or after.
    pub fn score_retain_model(
        &mut self,
        inputs: &Inputs,
        config: &UnlearnConfig,
        budget: &MemoryBudget,
        sink: &mut dyn FnMut(Event),
    ) -> Result<()> {
        let (Some(dir), true) = (
            &inputs.retain_model,
            config.eval_tofu && (config.eval_before || config.eval_after),
        ) else {
            return Ok(());
        };
        let key = cache::key(dir, &[&self.split_key()[0], &self.full, &self.device_name])
            .filter(|_| self.use_cache);
        if let Some((tr, source)) = key
            .as_ref()
            .and_then(|k| cache::load::<Vec<f64>>("retain-model-tr", k))
        {
            sink(Event::Phase {
                phase: format!("retain-only model's truth ratios: {source}"),
            });
            self.retain_model_tr = Some(tr);
            return Ok(());
        }
        sink(Event::Phase {
            phase: "scoring the retain-only model".into(),
        });
        let stop = self.stop.clone();
        let tr = retain_model_truth_ratios::<B>(
            dir,
            &self.splits[0].items,
            &self.full,
            budget,
            self.device,
            &move || stop.is_set(),
        )?
        .with_context(|| {
            format!(
                "{}: forget items need perturbed answers for forget quality",
                dir.display()
            )
        })?;
        if let Some(k) = &key {
            cache::store("retain-model-tr", k, &tr);
        }
        self.retain_model_tr = Some(tr);
        Ok(())
    }

    /// A full evaluation, with forget quality where the retain-only model was scored.
    pub fn full(&self, model: &MaskedDiffusionLm<B>) -> Result<EvalReport, EvalError> {
        let stop = self.stop.clone();
        let mut report = evaluate(
            model,
            self.tokenizer,
            self.splits,
            &self.full,
            self.device,
            &move || stop.is_set(),
        )?;
        if let (Some(theirs), Some(ours)) = (&self.retain_model_tr, report.forget_truth_ratios()) {
            report.forget_quality = forget_quality(&ours, theirs);
        }
        Ok(report)
    }

    /// The starting model's full evaluation (from the cache when this model, these splits and
    /// settings were evaluated before), recorded in the run folder.
    pub fn before(
        &self,
        model: &MaskedDiffusionLm<B>,
        checkpoint: &std::path::Path,
        privacy: Option<PrivacyReport>,
        run_dir: &RunDir,
        sink: &mut dyn FnMut(Event),
    ) -> Result<EvalReport> {
        let key = cache::key(
            checkpoint,
            &[
                &self.split_key(),
                &self.full,
                &self.device_name,
                &self.retain_model_tr,
            ],
        )
        .filter(|_| self.use_cache);
        let cached = key.as_ref().and_then(|k| {
            cache::load::<(EvalReport, BTreeMap<String, Vec<SampleDetail>>)>("before", k)
        });
        let mut report = match cached {
            Some(((mut report, samples), source)) => {
                sink(Event::Phase {
                    phase: format!("evaluating (before): {source}"),
                });
                report.samples = samples;
                report
            }
            None => {
                sink(Event::Phase {
                    phase: "evaluating (before)".into(),
                });
                let report = self.full(model).map_err(|e| eval_error(e, sink, run_dir))?;
                if let Some(k) = &key {
                    cache::store("before", k, &(&report, &report.samples));
                }
                report
            }
        };
        attach_privacy(&mut report, privacy);
        record_full_eval(run_dir, "before", 0, &report, sink)?;
        run_dir.write_before(&report)?;
        Ok(report)
    }

    /// The unlearned model's full evaluation, recorded in the run folder.
    pub fn after(
        &self,
        model: &MaskedDiffusionLm<B>,
        step: usize,
        privacy: Option<PrivacyReport>,
        run_dir: &RunDir,
        sink: &mut dyn FnMut(Event),
    ) -> Result<EvalReport> {
        sink(Event::Phase {
            phase: "evaluating (after)".into(),
        });
        let mut report = self.full(model).map_err(|e| eval_error(e, sink, run_dir))?;
        attach_privacy(&mut report, privacy);
        if self.leakage_probe {
            self.leakage(model, &mut report, run_dir, sink)?;
        }
        record_full_eval(run_dir, "after", step, &report, sink)?;
        Ok(report)
    }

    /// The leakage probe on the forget split (the items a full evaluation scores; the retain
    /// split's items as elicitation contexts): `leakage.json` in the run folder, and each forget
    /// sample's worst path in `report`.
    fn leakage(
        &self,
        model: &MaskedDiffusionLm<B>,
        report: &mut EvalReport,
        run_dir: &RunDir,
        sink: &mut dyn FnMut(Event),
    ) -> Result<()> {
        let Some(forget) = self.splits.iter().find(|s| s.role == SplitRole::Forget) else {
            return Ok(());
        };
        let n = self
            .full
            .max_items
            .unwrap_or(usize::MAX)
            .min(forget.items.len());
        let retain = self
            .splits
            .iter()
            .find(|s| s.role == SplitRole::Retain)
            .map_or(&[][..], |s| &s.items[..]);
        // The full evaluation's answers are the default path's: not generated twice.
        let answers: Option<Vec<String>> = report.samples.get(&forget.name).map(|samples| {
            let mut samples: Vec<&SampleDetail> = samples.iter().collect();
            samples.sort_by_key(|s| s.index);
            samples.iter().map(|s| s.generation.clone()).collect()
        });
        let stop = self.stop.clone();
        let probed = crate::inside::leakage::probe(
            model,
            self.tokenizer,
            &forget.items[..n],
            retain,
            &self.full.generation,
            answers.as_deref(),
            16,
            self.device,
            &move || stop.is_set(),
            |done, total| {
                sink(Event::Phase {
                    phase: format!("leakage probe: path {done} of {total}"),
                })
            },
        )
        .map_err(|e| eval_error(e, sink, run_dir))?;
        write_atomic(
            &run_dir.path.join("leakage.json"),
            serde_json::to_string_pretty(&probed)?.as_bytes(),
        )?;
        if let Some(samples) = report.samples.get_mut(&forget.name) {
            for (sample, item) in samples.iter_mut().zip(&probed.items) {
                sample.worst_path = Some(WorstPath {
                    path: item.worst_path.clone(),
                    rouge_l_recall: item.worst_rouge_l,
                    generation: item.worst_answer.clone(),
                });
            }
        }
        if let Some(scores) = report.splits.get_mut(&forget.name) {
            scores.worst_path_rouge_l_recall = Some(probed.worst_rouge_l);
        }
        Ok(())
    }

    /// The convergence diagnostic: mean KL per token role on the live forget items, against the
    /// starting model's anchor at `tau` (uniform without `base`).
    pub fn live_role_kl(
        &self,
        model: &MaskedDiffusionLm<B>,
        base: Option<&MaskedDiffusionLm<B>>,
        tau: f64,
    ) -> Result<Vec<RoleMean>> {
        let Some(forget) = self
            .live_splits
            .iter()
            .find(|s| s.role == SplitRole::Forget)
        else {
            return Ok(Vec::new());
        };
        let n = self
            .live
            .max_items
            .unwrap_or(usize::MAX)
            .min(forget.items.len());
        let items = &forget.items[..n];
        let rule = RoleRule::for_answers(
            forget.items.iter().map(|it| it.answer.as_str()),
            STRUCTURAL_SHARE,
        );
        let sampler = sampler_config(model, self.tokenizer, items, &self.live.generation)?;
        let traces = trace_items(
            model,
            base,
            self.tokenizer,
            items,
            &sampler,
            tau,
            &rule,
            self.device,
        )?;
        Ok(role_means(&traces))
    }

    /// A live evaluation: forget and retain subsets, few Monte-Carlo samples.
    pub fn live(&self, model: &MaskedDiffusionLm<B>) -> Result<EvalReport, EvalError> {
        let stop = self.stop.clone();
        evaluate(
            model,
            self.tokenizer,
            &self.live_splits,
            &self.live,
            self.device,
            &move || stop.is_set(),
        )
    }
}

/// Puts the privacy audit into `report`, and each forget item's extraction strength into its
/// sample (the audit scores the same first items of the forget split).
fn attach_privacy(report: &mut EvalReport, privacy: Option<PrivacyReport>) {
    if let Some(p) = &privacy {
        let forget = report
            .splits
            .iter()
            .find(|(_, s)| s.role == Some(SplitRole::Forget))
            .map(|(name, _)| name.clone());
        if let Some(samples) = forget.and_then(|name| report.samples.get_mut(&name)) {
            for s in samples.iter_mut() {
                s.extraction_strength = p.forget_extraction.get(s.index).copied();
            }
        }
    }
    report.privacy = privacy;
}

/// A stopped evaluation ends the run as stopped (the event is sent here); others are errors.
pub(super) fn eval_error(
    e: EvalError,
    sink: &mut dyn FnMut(Event),
    run_dir: &RunDir,
) -> anyhow::Error {
    match e {
        EvalError::Stopped => {
            sink(Event::Stopped {
                step: 0,
                run_dir: run_dir.path.clone(),
            });
            Stopped.into()
        }
        other => other.into(),
    }
}

/// Sends a full evaluation's samples and scores, and writes its per-item file.
fn record_full_eval(
    run_dir: &RunDir,
    when: &str,
    step: usize,
    report: &EvalReport,
    sink: &mut dyn FnMut(Event),
) -> Result<()> {
    for (split, samples) in &report.samples {
        sink(Event::Samples {
            step,
            when: when.into(),
            split: split.clone(),
            samples: samples.clone(),
        });
    }
    write_atomic(
        &run_dir.samples_file(when),
        report.details_jsonl().as_bytes(),
    )?;
    sink(Event::Eval {
        step,
        when: when.into(),
        report: report.clone(),
    });
    Ok(())
}
