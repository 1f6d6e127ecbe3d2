//! What the window knows about one run, built only from engine [`Event`]s (live, or replayed from a
//! run directory's `metrics.jsonl`): the curves, the evaluations, the samples, the phase and the
//! progress. Plain data, no tensors; the plots, tables and CSV export read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::eval::protocol::{EvalReport, SampleDetail};
use crate::events::Event;
use crate::inside::trace::RoleMean;
use crate::unlearn::run_dir::kept_lines;

/// One point of an evaluation curve.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalPoint {
    pub step: usize,
    /// "live" (cheap subset) or "full" (before/after).
    pub label: String,
    pub report: EvalReport,
}

/// Where a run stands.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum RunState {
    #[default]
    Idle,
    Running,
    Finished,
    Stopped,
    Failed(String),
}

#[derive(Clone, Debug, Default)]
pub struct RunRecord {
    pub state: RunState,
    pub phase: String,
    pub run_dir: Option<PathBuf>,
    pub model_dir: Option<PathBuf>,
    pub architecture: String,
    pub parameters: u64,
    pub device: String,
    pub steps_total: usize,
    /// (step, total loss)
    pub loss: Vec<[f64; 2]>,
    /// Loss parts by name ("forget", "retain", …), each (step, value).
    pub parts: BTreeMap<String, Vec<[f64; 2]>>,
    pub lr: Vec<[f64; 2]>,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    pub evals: Vec<EvalPoint>,
    /// (when, split) → per-item details of the full evaluations ("before", "after").
    pub samples: BTreeMap<(String, String), Vec<SampleDetail>>,
    /// The convergence diagnostic: (step, mean KL per token role on the live forget items).
    pub role_kl: Vec<(usize, Vec<RoleMean>)>,
    pub warnings: Vec<String>,
    pub summary: Option<serde_json::Value>,
}

impl RunRecord {
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Phase { phase } => {
                if self.state == RunState::Idle {
                    self.state = RunState::Running;
                }
                self.phase = phase;
            }
            Event::Reuse { .. } => {}
            Event::Loaded {
                architecture,
                parameters,
                device,
                run_dir,
                ..
            } => {
                self.state = RunState::Running;
                self.architecture = architecture;
                self.parameters = parameters;
                self.device = device;
                self.run_dir = Some(run_dir);
            }
            Event::Step {
                step,
                steps,
                loss,
                parts,
                lr,
                tokens_per_s,
                elapsed_s,
                ..
            } => {
                let x = step as f64;
                self.steps_total = steps;
                self.loss.push([x, loss]);
                for (name, v) in parts {
                    self.parts.entry(name).or_default().push([x, v]);
                }
                self.lr.push([x, lr]);
                self.tokens_per_s = tokens_per_s;
                self.elapsed_s = elapsed_s;
            }
            Event::Eval { step, report, .. } => self.evals.push(EvalPoint {
                step,
                label: report.label.clone(),
                report,
            }),
            Event::Samples {
                when,
                split,
                samples,
                ..
            } => {
                self.samples.insert((when, split), samples);
            }
            Event::RoleKl { step, means } => self.role_kl.push((step, means)),
            Event::Checkpoint { .. } | Event::Kernels { .. } => {}
            Event::Warning { message } => self.warnings.push(message),
            Event::Finished {
                run_dir,
                model_dir,
                summary,
            } => {
                self.state = RunState::Finished;
                self.phase = "finished".into();
                self.run_dir = Some(run_dir);
                self.model_dir = Some(model_dir);
                self.summary = Some(summary);
            }
            Event::Stopped { run_dir, .. } => {
                self.state = RunState::Stopped;
                self.phase = "stopped".into();
                self.run_dir = Some(run_dir);
            }
            Event::Failed { error } => {
                self.phase = "failed".into();
                self.state = RunState::Failed(error);
            }
        }
    }

    /// The record of a run up to `step` (what a resumed run keeps; its later steps come again):
    /// `metrics.jsonl` cut as the engine cuts it on resume (`run_dir::kept_lines`).
    pub fn until_step(dir: &Path, step: usize) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(dir.join("metrics.jsonl"))?;
        let mut record = Self::default();
        record.apply_lines(kept_lines(&text, step));
        record.run_dir = Some(dir.to_path_buf());
        Ok(record)
    }

    /// Every event among `lines` (JSON lines of `metrics.jsonl`), in order.
    fn apply_lines<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) {
        for line in lines {
            if let Ok(event) = serde_json::from_str::<Event>(line) {
                self.apply(event);
            }
        }
    }

    /// Rebuilds a finished (or stopped) run from its directory: `metrics.jsonl` holds the step and
    /// evaluation events, `samples_*.jsonl` the per-item details, `summary.json` the outcome.
    pub fn from_run_dir(dir: &Path) -> std::io::Result<Self> {
        let mut record = Self::default();
        let text = std::fs::read_to_string(dir.join("metrics.jsonl"))?;
        record.apply_lines(text.lines());
        for when in ["before", "after"] {
            let Ok(text) = std::fs::read_to_string(dir.join(format!("samples_{when}.jsonl")))
            else {
                continue;
            };
            for line in text.lines() {
                let Ok(mut v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let split = v
                    .as_object_mut()
                    .and_then(|o| o.remove("split"))
                    .and_then(|s| s.as_str().map(str::to_string))
                    .unwrap_or_default();
                if let Ok(detail) = serde_json::from_value::<SampleDetail>(v) {
                    record
                        .samples
                        .entry((when.to_string(), split))
                        .or_default()
                        .push(detail);
                }
            }
        }
        record.run_dir = Some(dir.to_path_buf());
        let summary = std::fs::read_to_string(dir.join("summary.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        record.state = if summary.is_some() {
            RunState::Finished
        } else {
            RunState::Stopped
        };
        if dir.join("model").join("config.json").exists() {
            record.model_dir = Some(dir.join("model"));
        }
        // The full evaluations are not in metrics.jsonl: they are the summaries' before/after.
        let before = summary.as_ref().map(|s| s["before"].clone()).or_else(|| {
            std::fs::read_to_string(dir.join("summary_before.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
        });
        let last_step = record.loss.last().map_or(0, |p| p[0] as usize);
        let after = summary.as_ref().map(|s| s["after"].clone());
        for (step, report) in [(0, before), (last_step, after)] {
            if let Some(Ok(report)) = report.map(serde_json::from_value::<EvalReport>) {
                record.evals.push(EvalPoint {
                    step,
                    label: report.label.clone(),
                    report,
                });
            }
        }
        record.evals.sort_by_key(|e| e.step);
        record.summary = summary;
        Ok(record)
    }

    /// A score of a split over the evaluations: (step, value) points, live and full apart.
    pub fn eval_series(
        &self,
        split: &str,
        label: &str,
        score: impl Fn(&EvalReport, &str) -> Option<f64>,
    ) -> Vec<[f64; 2]> {
        self.evals
            .iter()
            .filter(|e| e.label == label)
            .filter_map(|e| score(&e.report, split).map(|v| [e.step as f64, v]))
            .collect()
    }

    /// The latest score of a split (live or full).
    pub fn latest(
        &self,
        split: &str,
        score: impl Fn(&EvalReport, &str) -> Option<f64>,
    ) -> Option<f64> {
        self.evals
            .iter()
            .rev()
            .find_map(|e| score(&e.report, split))
    }

    /// The full evaluation before (or after) training.
    pub fn full_eval(&self, when: Moment) -> Option<&EvalReport> {
        let full = self.evals.iter().filter(|e| e.label == "full");
        match when {
            Moment::Before => full.min_by_key(|e| e.step),
            Moment::After => full.filter(|e| e.step > 0).max_by_key(|e| e.step),
        }
        .map(|e| &e.report)
    }

    /// Fraction done, counting steps (evaluations before and after are not weighed).
    pub fn progress(&self) -> f32 {
        match self.state {
            RunState::Finished => 1.0,
            _ if self.steps_total == 0 => 0.0,
            _ => self
                .loss
                .last()
                .map_or(0.0, |p| p[0] as f32 / self.steps_total as f32),
        }
    }

    /// Seconds left for the training steps, from the pace so far.
    pub fn eta_s(&self) -> Option<f64> {
        let (first, last) = (self.loss.first()?, self.loss.last()?);
        let done = last[0] - first[0];
        if done < 1.0 || self.state != RunState::Running {
            return None;
        }
        let per_step = self.elapsed_s / last[0].max(1.0);
        Some(per_step * (self.steps_total as f64 - last[0]).max(0.0))
    }

    /// The convergence diagnostic of one token role: (step, mean KL to the target).
    pub fn role_kl_series(&self, role: crate::inside::roles::Role) -> Vec<[f64; 2]> {
        self.role_kl
            .iter()
            .filter_map(|(step, means)| {
                means
                    .iter()
                    .find(|m| m.role == role)
                    .map(|m| [*step as f64, m.kl])
            })
            .collect()
    }

    /// Every series as CSV: `series,step,value`, one row per point.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("series,step,value\n");
        let mut put = |name: &str, pts: &[[f64; 2]]| {
            for p in pts {
                out.push_str(&format!("{name},{},{}\n", p[0], p[1]));
            }
        };
        put("loss", &self.loss);
        for (name, pts) in &self.parts {
            put(&format!("loss_{name}"), pts);
        }
        put("lr", &self.lr);
        for label in ["live", "full"] {
            for (metric, score) in METRICS {
                for split in ["forget", "retain"] {
                    put(
                        &format!("{label}_{split}_{metric}"),
                        &self.eval_series(split, label, score),
                    );
                }
            }
            if label == "live" {
                for role in crate::inside::roles::Role::ALL {
                    put(
                        &format!("live_kl_{}", role.name().replace('-', "_")),
                        &self.role_kl_series(role),
                    );
                }
            }
            put(
                &format!("{label}_model_utility"),
                &self
                    .evals
                    .iter()
                    .filter(|e| e.label == label)
                    .filter_map(|e| e.report.model_utility.map(|u| [e.step as f64, u]))
                    .collect::<Vec<_>>(),
            );
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    Before,
    After,
}

/// A split's score by name, for the curves and the CSV.
pub type Score = fn(&EvalReport, &str) -> Option<f64>;

pub fn rouge_recall(r: &EvalReport, split: &str) -> Option<f64> {
    split_of(r, split).map(|s| s.rouge_l_recall)
}

pub fn probability(r: &EvalReport, split: &str) -> Option<f64> {
    split_of(r, split).map(|s| s.probability_eq14)
}

pub fn truth_ratio(r: &EvalReport, split: &str) -> Option<f64> {
    split_of(r, split).and_then(|s| s.truth_ratio_mdu)
}

/// The named scores every evaluation has (ROUGE-L recall, Eq. 14 probability, MDU truth ratio).
pub const METRICS: [(&str, Score); 3] = [
    ("rougeL_recall", rouge_recall),
    ("probability_eq14", probability),
    ("truth_ratio_mdu", truth_ratio),
];

/// The split whose name or role is `split` ("forget", "retain").
fn split_of<'a>(r: &'a EvalReport, split: &str) -> Option<&'a crate::eval::protocol::SplitScores> {
    r.splits.get(split).or_else(|| {
        r.splits.values().find(|s| {
            s.role
                .is_some_and(|role| format!("{role:?}").eq_ignore_ascii_case(split))
        })
    })
}

/// Exponential moving average with weight `alpha` on history (0 = raw values).
pub fn ema(points: &[[f64; 2]], alpha: f64) -> Vec<[f64; 2]> {
    let alpha = alpha.clamp(0.0, 0.999);
    let mut acc: Option<f64> = None;
    points
        .iter()
        .map(|&[x, y]| {
            let v = match acc {
                Some(prev) => alpha * prev + (1.0 - alpha) * y,
                None => y,
            };
            acc = Some(v);
            [x, v]
        })
        .collect()
}
