//! Run control: start (with the inputs resolved once), stop, the queue, opening past runs, the
//! Ask box's question, saving the unlearned model and exporting series and plots.

use std::path::{Path, PathBuf};
use std::sync::mpsc::TryRecvError;

use eframe::egui;

use super::actions::Export;
use super::app::WorkbenchApp;
use super::dialogs::{PickKind, PickRequest};
use super::jobs::ActiveRun;
use super::series::{RunRecord, RunState};
use super::Tab;
use crate::data::QaItem;
use crate::events::{Event, KERNELS_STATUS};
use crate::session::TraceRequest;
use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::inputs::Inputs;
use crate::unlearn::run_dir::{new_run_dir, RunDir};

/// Tokens the Ask box's answer gets.
const ASK_TOKENS: usize = 48;

impl WorkbenchApp {
    /// Starts a run with the setup panel's inputs. Errors name what is missing.
    pub fn start(&mut self) {
        let config = self.settings.config.clone();
        self.start_with(config, false);
    }

    pub(super) fn start_with(&mut self, mut config: UnlearnConfig, from_queue: bool) {
        if self.run.is_some() {
            return;
        }
        let first_problem = [
            self.checkpoint.problem(),
            self.forget.problem(),
            self.retain.problem(),
        ]
        .into_iter()
        .flatten()
        .next();
        if let Some(problem) = first_problem {
            self.errors.push_back(problem);
            self.queue.clear();
            return;
        }
        self.resolve_inputs(&mut config);
        let run_dir = new_run_dir(&self.settings.runs_root, &config);
        let handle = self.session.unlearn(config, run_dir.clone(), false);
        self.record = RunRecord {
            state: RunState::Running,
            phase: "starting".into(),
            run_dir: Some(run_dir),
            ..Default::default()
        };
        self.frame_times.clear();
        self.run = Some(ActiveRun { handle, from_queue });
        self.status = "Running…".into();
        self.tab = if from_queue { self.tab } else { Tab::Curves };
    }

    /// Continues the stopped or crashed run in `dir` from its newest checkpoint, as `mdu unlearn
    /// --resume` does; the curves keep its steps up to there and the rest arrive again.
    pub(super) fn resume_run(&mut self, dir: &Path) {
        if self.run.is_some() {
            return;
        }
        let config = match UnlearnConfig::from_toml_file(&dir.join(RunDir::CONFIG)) {
            Ok(c) => c,
            Err(e) => {
                self.errors.push_back(format!("{e:#}"));
                return;
            }
        };
        let Some(step) = RunDir::new(dir.to_path_buf()).resume_step() else {
            self.errors.push_back(format!(
                "{}: no checkpoint to resume from (the run saved none; set Checkpoint every in Advanced)",
                dir.display()
            ));
            return;
        };
        let mut record = RunRecord::until_step(dir, step).unwrap_or_default();
        record.state = RunState::Running;
        record.phase = "resuming".into();
        record.run_dir = Some(dir.to_path_buf());
        record.steps_total = config.steps;
        let handle = self.session.unlearn(config, dir.to_path_buf(), true);
        self.record = record;
        self.frame_times.clear();
        self.run = Some(ActiveRun {
            handle,
            from_queue: false,
        });
        self.status = format!("Resuming from step {step}…");
        self.tab = Tab::Curves;
    }

    /// The setup panel's paths into `config`: the demo's full set (retain-only model, utility
    /// files) when the inputs are the demo's, else the three chosen paths.
    fn resolve_inputs(&mut self, config: &mut UnlearnConfig) {
        if let (true, Some(demo)) = (self.inputs_are_demo(), &self.demo) {
            config.checkpoint = None;
            config.forget = None;
            config.retain = None;
            Inputs::with_demo(config, demo).write_into(config);
            return;
        }
        config.demo = false;
        config.checkpoint = Some(self.checkpoint.path_buf());
        config.forget = Some(self.forget.path_buf());
        config.retain = Some(self.retain.path_buf());
        for p in [self.checkpoint.path_buf(), self.forget.path_buf()] {
            let folder = if p.is_dir() {
                p
            } else {
                p.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            self.settings.remember(folder);
        }
    }

    /// Asks the engine to stop (after the confirmation).
    pub fn stop(&mut self) {
        if let Some(run) = &self.run {
            run.handle.stop.request();
            self.status = "Stopping…".into();
        }
        self.queue.clear();
        self.confirm_stop = false;
    }

    /// Drains the active run's events; true while a run is active.
    pub(super) fn poll_engine(&mut self) -> bool {
        let Some(run) = &self.run else { return false };
        let mut ended = false;
        loop {
            match run.handle.events.try_recv() {
                Ok(event) => {
                    match &event {
                        Event::Failed { error } => self.errors.push_back(error.clone()),
                        Event::Warning { message } => self.status = format!("Warning: {message}"),
                        // "Preparing GPU kernels: 37 compiled, 4 tuned (the first run …)"
                        Event::Kernels { message, .. } => self.status = message.clone(),
                        Event::Step { .. } if self.status.starts_with(KERNELS_STATUS) => {
                            self.status = "Running…".into()
                        }
                        _ => {}
                    }
                    ended |= matches!(
                        event,
                        Event::Finished { .. } | Event::Stopped { .. } | Event::Failed { .. }
                    );
                    self.record.apply(event);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if self.record.state == RunState::Running {
                        let msg = "The engine stopped without finishing the run.".to_string();
                        self.errors.push_back(msg.clone());
                        self.record.state = RunState::Failed(msg);
                    }
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            self.run_ended();
        }
        true
    }

    fn run_ended(&mut self) {
        let from_queue = self.run.take().is_some_and(|r| r.from_queue);
        self.confirm_stop = false;
        self.status = match &self.record.state {
            RunState::Finished => {
                "Finished: the unlearned model is in the run folder; Save model as… copies it."
                    .into()
            }
            RunState::Stopped => "Stopped. The run folder is complete up to the last step.".into(),
            RunState::Failed(_) => "The run failed (see the message).".into(),
            _ => String::new(),
        };
        if from_queue && self.record.state == RunState::Finished {
            if let Some(d) = self.record.run_dir.clone() {
                self.settings.tradeoff_runs.push(d);
            }
        }
        if !from_queue || self.queue.is_empty() {
            self.queue.clear();
        }
        self.write_frame_stats();
        self.rescan_history();
    }

    /// Shows a past run (its curves, samples and model) unless one is running.
    pub fn open_run(&mut self, dir: &Path) {
        if self.is_running() {
            self.errors
                .push_back("A run is active: stop it before opening another.".into());
            return;
        }
        match RunRecord::from_run_dir(dir) {
            Ok(r) => {
                self.record = r;
                self.tab = Tab::Curves;
                self.status = format!("Opened {}", dir.display());
            }
            Err(e) => self.errors.push_back(format!("{}: {e}", dir.display())),
        }
    }

    /// A free question to the current model: the unlearned one after a run, else the loaded one.
    pub(super) fn ask(&mut self, question: String) {
        let model_dir = self
            .record
            .model_dir
            .clone()
            .unwrap_or_else(|| self.checkpoint.path_buf());
        let request = TraceRequest {
            model_dir,
            item: QaItem {
                question,
                answer: String::new(),
                paraphrased_answer: None,
                perturbed_answer: vec![],
                paraphrased_question: None,
            },
            device: self.settings.config.device.clone(),
            free_tokens: Some(ASK_TOKENS),
        };
        self.prompt_answer = None;
        self.prompt_job = Some(self.session.trace(request));
    }

    /// Opens the Save model as… prompt: an editable destination with a Browse… button, because
    /// the native dialog needs a desktop portal that not every machine has.
    pub fn save_model(&mut self) {
        let Some(model) = &self.record.model_dir else {
            return;
        };
        let run = model
            .parent()
            .and_then(|d| d.file_name())
            .map_or("run".into(), |n| n.to_string_lossy().into_owned());
        let folder = self
            .settings
            .recent
            .first()
            .and_then(|d| d.parent().map(Path::to_path_buf))
            .or_else(dirs::home_dir)
            .unwrap_or_else(std::env::temp_dir);
        self.save_prompt = Some(
            folder
                .join(format!("unlearned-{run}"))
                .display()
                .to_string(),
        );
    }

    pub(super) fn browse_save_destination(&mut self) {
        let start = self
            .save_prompt
            .as_deref()
            .map(Path::new)
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        self.save.dialog = Some(self.dialogs.pick(PickRequest {
            kind: PickKind::NewFolder,
            title: "Save the unlearned model as (a new folder)".into(),
            start,
            filters: vec![],
            file_name: Some("unlearned-model".into()),
        }));
    }

    /// Copies the run's model to the typed destination on a worker.
    pub(super) fn save_to(&mut self, dest: String) {
        self.save_prompt = None;
        if dest.trim().is_empty() {
            self.errors
                .push_back("Save model as…: type a destination folder.".into());
            return;
        }
        let dest = PathBuf::from(dest.trim());
        if let Some(src) = self.record.model_dir.clone() {
            self.save.job = Some(self.session.save_model(src, dest));
            self.status = "Saving the model…".into();
        }
    }

    pub(super) fn poll_save(&mut self) {
        if let Some(job) = &mut self.save.dialog {
            if let Some(answer) = job.poll() {
                self.save.dialog = None;
                if let (Some(dest), Some(prompt)) = (answer, &mut self.save_prompt) {
                    *prompt = dest.display().to_string();
                }
            }
        }
        if let Some(job) = &mut self.save.job {
            if let Some(result) = job.poll() {
                self.save.job = None;
                match result {
                    Ok(dest) => self.status = format!("Model saved to {}", dest.display()),
                    Err(e) => self.errors.push_back(e),
                }
            }
        }
        self.poll_export();
    }

    fn poll_export(&mut self) {
        let Some((what, job)) = &mut self.export.asked else {
            return;
        };
        let Some(answer) = job.poll() else { return };
        let what = *what;
        self.export.asked = None;
        let Some(path) = answer else { return };
        match what {
            Export::Csv => {
                match crate::data::write_atomic(&path, self.record.to_csv().as_bytes()) {
                    Ok(()) => self.status = format!("Series written to {}", path.display()),
                    Err(e) => self.errors.push_back(format!("{}: {e}", path.display())),
                }
            }
            Export::Png(kind) => self.export.png_pending = Some((kind, path)),
            Export::InsideCsv => {
                let Some(Ok(traces)) = &self.inside.traces else {
                    return;
                };
                let csv = super::inside::to_csv(&traces.before, &traces.after, &traces.after_along);
                match crate::data::write_atomic(&path, csv.as_bytes()) {
                    Ok(()) => self.status = format!("Traces written to {}", path.display()),
                    Err(e) => self.errors.push_back(format!("{}: {e}", path.display())),
                }
            }
        }
    }

    /// Asks the session for the Inside view's traces: the starting model and (after a run) the
    /// unlearned one on the first forget questions, against the starting model's anchor at the
    /// run's τ (MDU; 1, the raw anchor, for other methods or without a run).
    pub(super) fn trace_inside(&mut self) {
        let config = &self.settings.config;
        let params = self
            .record
            .summary
            .as_ref()
            .map(|s| (&s["method"], &s["params"]["tau"]));
        let tau = match params {
            Some((method, tau)) => match (method.as_str(), tau.as_f64()) {
                (Some("mdu"), Some(tau)) => tau,
                _ => 1.0,
            },
            None if config.method == crate::unlearn::methods::Method::Mdu => config.params.tau,
            None => 1.0,
        };
        let request = crate::session::KlTraceRequest {
            start_dir: self.checkpoint.path_buf(),
            unlearned_dir: self.record.model_dir.clone(),
            data: self.forget.path_buf(),
            items: self.inside.items,
            tau,
            generation: config.generation.clone(),
            device: config.device.clone(),
        };
        self.inside.traces = None;
        self.inside.job = Some(self.session.kl_trace(request));
    }

    pub(super) fn ask_export(&mut self, what: Export) {
        let (name, ext) = Self::export_kind_name(what);
        let pick = self.dialogs.pick(PickRequest {
            kind: PickKind::NewFile,
            title: format!("Export {ext}"),
            start: self.record.run_dir.clone(),
            filters: vec![(ext.to_uppercase(), vec![ext.into()])],
            file_name: Some(name),
        });
        self.export.asked = Some((what, pick));
    }

    /// Cuts a requested plot out of this frame's screenshot and writes it as PNG.
    pub(super) fn handle_screenshot(&mut self, ctx: &egui::Context) {
        let Some((kind, path)) = self.export.png_pending.clone() else {
            return;
        };
        let shot = ctx.input(|i| {
            i.events.iter().find_map(|e| match e {
                egui::Event::Screenshot { image, .. } => Some(image.clone()),
                _ => None,
            })
        });
        let Some(image) = shot else { return };
        self.export.png_pending = None;
        let Some((_, rect)) = self.export.plot_rects.iter().find(|(k, _)| *k == kind) else {
            return;
        };
        let region = image.region(rect, Some(ctx.pixels_per_point()));
        let [w, h] = region.size;
        let bytes: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_array()).collect();
        let result = image::RgbaImage::from_raw(w as u32, h as u32, bytes)
            .ok_or_else(|| "empty image".to_string())
            .and_then(|img| {
                let mut png = Vec::new();
                img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                    .map_err(|e| e.to_string())?;
                crate::data::write_atomic(&path, &png).map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => self.status = format!("Plot written to {}", path.display()),
            Err(e) => self.errors.push_back(format!("{}: {e}", path.display())),
        }
    }

    /// `MDU_FRAME_STATS=FILE`: the frame-time percentiles of the last run, as JSON.
    pub(super) fn write_frame_stats(&self) {
        let Some(path) = std::env::var_os("MDU_FRAME_STATS") else {
            return;
        };
        let mut ms: Vec<f64> = self
            .frame_times
            .iter()
            .map(|&t| t as f64 * 1000.0)
            .collect();
        if ms.is_empty() {
            return;
        }
        ms.sort_by(f64::total_cmp);
        let pct = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        let stats = serde_json::json!({
            "frames": ms.len(), "p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": pct(1.0),
        });
        let _ = std::fs::write(path, stats.to_string());
    }
}
