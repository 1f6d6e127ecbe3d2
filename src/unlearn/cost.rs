//! What a run will cost in time, from a short measured probe: the run itself, cut down to a
//! couple of evaluation items per split, three training steps with a live evaluation after each,
//! in a throw-away folder. The probe's phases are timed as its events arrive and scaled to the
//! run's steps and items.
//!
//! Scaling: training steps cost the same (the mean of probe steps 2 and 3; step 1 carries
//! warm-up and kernel preparation); an evaluation costs in proportion to the items it scores
//! (full: every split up to `eval_max_items`; live: `live_items` of forget and retain; the
//! retain-only model: the forget split); loading is as measured. The "after" evaluation costs
//! what "before" did per item. What the run would reuse (the retain-only model's scores and the
//! "before" evaluation, cached on this machine or recorded with the demo) costs nothing; the
//! probe itself never reuses, so that it measures.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::config::UnlearnConfig;
use super::engine;
use super::inputs::ResolvedRun;
use crate::events::{Event, StopFlag};

/// Evaluation items per split in the probe.
const PROBE_ITEMS: usize = 2;
/// Training steps in the probe.
const PROBE_STEPS: usize = 3;

/// The estimated time of each part of a run, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub loading_s: f64,
    /// Scoring the retain-only model (TOFU's forget quality).
    pub retain_model_s: f64,
    pub before_s: f64,
    pub training_s: f64,
    pub live_s: f64,
    pub after_s: f64,
    /// One training step, as measured.
    pub step_s: f64,
}

impl CostEstimate {
    pub fn total_s(&self) -> f64 {
        self.loading_s
            + self.retain_model_s
            + self.before_s
            + self.training_s
            + self.live_s
            + self.after_s
    }

    /// "≈ 1 min 32 s: loading 2 s, evaluation before 25 s, training 40 s (0.40 s a step), …".
    pub fn describe(&self) -> String {
        let parts = [
            ("loading", self.loading_s),
            ("retain-only model", self.retain_model_s),
            ("evaluation before", self.before_s),
            ("training", self.training_s),
            ("live evaluations", self.live_s),
            ("evaluation after", self.after_s),
        ];
        let listed: Vec<String> = parts
            .iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(name, s)| {
                if *name == "training" {
                    format!("{name} {} ({:.2} s a step)", duration(*s), self.step_s)
                } else {
                    format!("{name} {}", duration(*s))
                }
            })
            .collect();
        format!("≈ {}: {}", duration(self.total_s()), listed.join(", "))
    }
}

/// "45 s", "3 min 20 s", "2 h 05 min".
pub fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

/// The probe of `run`: the same model, data, method and protocols at a small scale.
pub fn probe_config(run: &UnlearnConfig) -> UnlearnConfig {
    UnlearnConfig {
        steps: PROBE_STEPS,
        live_every: usize::from(run.live_every > 0),
        live_items: run.live_items.min(PROBE_ITEMS),
        eval_max_items: Some(run.eval_max_items.unwrap_or(usize::MAX).min(PROBE_ITEMS)),
        eval_after: false,
        save_every: 0,
        stop_at_forget_rouge: None,
        warmup_steps: 0,
        ..run.clone()
    }
}

/// When each of the probe's phases ended, as its events arrived.
#[derive(Default)]
struct Timeline {
    loaded: Option<f64>,
    /// When the retain-only model's scoring and the "before" evaluation began.
    retain_model: Option<f64>,
    before: Option<f64>,
    /// What the probed run would reuse: (retain-only model, before).
    reuse: (bool, bool),
    training: Option<f64>,
    /// (step, when its Step event arrived, when its live evaluation arrived)
    steps: Vec<(usize, f64, Option<f64>)>,
    eval_items: Vec<usize>,
}

impl Timeline {
    fn record(&mut self, t: f64, event: &Event) {
        match event {
            Event::Loaded { eval_items, .. } => {
                self.loaded = Some(t);
                self.eval_items = eval_items.clone();
            }
            Event::Phase { phase } if phase == "training" => self.training = Some(t),
            Event::Phase { phase } if phase.starts_with("retain-only model") => {
                self.retain_model = Some(t)
            }
            Event::Phase { phase } if phase.starts_with("evaluating (before)") => {
                self.before = Some(t)
            }
            Event::Reuse {
                retain_model,
                before,
            } => self.reuse = (*retain_model, *before),
            Event::Step { step, .. } => self.steps.push((*step, t, None)),
            Event::Eval { step, when, .. } if when == "step" => {
                if let Some(s) = self.steps.iter_mut().find(|s| s.0 == *step) {
                    s.2 = Some(t);
                }
            }
            _ => {}
        }
    }
}

/// Runs the probe of `run` in a throw-away folder and scales it to `run`.
pub fn estimate(run: &UnlearnConfig, stop: &StopFlag) -> Result<CostEstimate> {
    let dir = scratch_dir();
    let start = Instant::now();
    let mut timeline = Timeline::default();
    let probe = probe_config(run);
    let mut resolved = ResolvedRun::new(probe.clone(), dir.clone(), false)?;
    // A cached evaluation would take no time and say nothing about the run's.
    resolved.eval_cache = false;
    resolved.probe_of = Some(run.clone());
    let result = engine::run_resolved(
        resolved,
        &mut |e| timeline.record(start.elapsed().as_secs_f64(), &e),
        stop,
    );
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    scale(run, &probe, &timeline)
}

fn scratch_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("mdu-cost-probe-{}-{nanos}", std::process::id()))
}

fn scale(run: &UnlearnConfig, probe: &UnlearnConfig, t: &Timeline) -> Result<CostEstimate> {
    let (Some(loaded), Some(training)) = (t.loaded, t.training) else {
        bail!("the probe run ended before training");
    };
    // A step: from the previous step's end (its live evaluation, if any) to its Step event.
    let mut step_times = Vec::new();
    let mut live_times = Vec::new();
    let mut previous_end = training;
    for &(_, at, live) in &t.steps {
        step_times.push(at - previous_end);
        if let Some(live) = live {
            live_times.push(live - at);
        }
        previous_end = live.unwrap_or(at);
    }
    if step_times.len() < PROBE_STEPS {
        bail!("the probe run stopped after {} steps", step_times.len());
    }
    let step_s = (step_times[1] + step_times[2]) / 2.0;
    let per_split = |cap: Option<usize>| -> f64 {
        t.eval_items
            .iter()
            .map(|&n| n.min(cap.unwrap_or(usize::MAX)) as f64)
            .sum()
    };
    // Loaded → retain-only model → before → training, each phase present or not.
    let before_start = t.before.unwrap_or(training);
    let retain_start = t.retain_model.unwrap_or(before_start);
    let retain_probe = before_start - retain_start;
    let before_probe = training - before_start;
    let full_scale = per_split(run.eval_max_items) / per_split(probe.eval_max_items).max(1.0);
    let full_s = before_probe * full_scale;
    let forget = |cap: Option<usize>| {
        t.eval_items
            .first()
            .map_or(1.0, |&n| n.min(cap.unwrap_or(usize::MAX)) as f64)
    };
    let retain_s =
        retain_probe * forget(run.eval_max_items) / forget(probe.eval_max_items).max(1.0);
    let (reuse_retain_model, reuse_before) = t.reuse;
    let live_each = if live_times.is_empty() {
        0.0
    } else {
        live_times[1..].iter().sum::<f64>() / (live_times.len() - 1).max(1) as f64
    };
    let live_count = if run.live_every > 0 {
        run.steps / run.live_every
    } else {
        0
    };
    let live_scale = run.live_items as f64 / probe.live_items.max(1) as f64;
    Ok(CostEstimate {
        loading_s: loaded,
        retain_model_s: if reuse_retain_model { 0.0 } else { retain_s },
        before_s: if run.eval_before && !reuse_before {
            full_s
        } else {
            0.0
        },
        training_s: step_s * run.steps as f64,
        live_s: live_each * live_scale * live_count as f64,
        after_s: if run.eval_after { full_s } else { 0.0 },
        step_s,
    })
}
