//! The workbench window (eframe + egui + egui_plot). It opens on the embedded demo, drives the
//! unlearning engine on a worker thread through plain [`Event`]s, and never holds a tensor: model
//! work (runs, denoising traces, the prompt box) happens on workers that send back strings and
//! numbers. Each frame drains the events and draws.

pub mod denoise;
pub mod dialogs;
pub mod history;
pub mod job;
pub mod plots;
pub mod samples;
pub mod series;
pub mod setup;
pub mod tradeoff;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};

use eframe::egui;
use serde::{Deserialize, Serialize};

use crate::data::QaItem;
use crate::demo::embedded::DemoPaths;
use crate::events::{Event, StopFlag, KERNELS_STATUS};
use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::engine;
use dialogs::{Dialogs, NativeDialogs, PickKind, PickRequest};
use history::HistoryEntry;
use job::Job;
use plots::PlotKind;
use series::{RunRecord, RunState};
use setup::{CheckpointInfo, FileInfo, PathField};

pub const APP_TITLE: &str = "MDU Workbench";
const SETTINGS_KEY: &str = "mdu-workbench-settings";
const AUTO_DEVICE: &str = "Automatic (CUDA, else a GPU, else the CPU)";

/// Opens the window. The engine gets all cores but one, so the window stays responsive.
pub fn run() -> eframe::Result<()> {
    limit_engine_threads();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(APP_TITLE)
            .with_inner_size([1280.0, 820.0]),
        ..Default::default()
    };
    eframe::run_native(
        APP_TITLE,
        options,
        Box::new(|cc| {
            let settings = cc
                .storage
                .and_then(|s| s.get_string(SETTINGS_KEY))
                .and_then(|t| serde_json::from_str::<Settings>(&t).ok())
                .unwrap_or_default();
            Ok(Box::new(WorkbenchApp::new(
                settings,
                Box::new(NativeDialogs),
            )))
        }),
    )
}

/// Caps the compute pools (rayon and matrixmultiply) at cores − 1 threads, unless the user set
/// them. Must run before any tensor work.
fn limit_engine_threads() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let engine = cores.saturating_sub(1).max(1);
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // SAFETY: called at start-up, before the window or any worker thread exists.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", engine.to_string()) };
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(engine)
            .build_global();
    }
}

/// Said once when the system file dialog cannot open.
pub const DIALOG_UNAVAILABLE: &str = "The system file dialog did not open: this desktop has no file-dialog portal (xdg-desktop-portal). Type or paste paths instead: every Open… has an editable path field beside it, and Save model as… has one in its prompt.";

/// What survives a restart (eframe storage).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where run folders go (shown and changeable).
    pub runs_root: PathBuf,
    /// Recently opened folders, newest first.
    pub recent: Vec<PathBuf>,
    /// The setup of the last run (method, τ, learning rate, …).
    pub config: UnlearnConfig,
    pub smoothing: f64,
    /// Runs queued from the trade-off explorer.
    pub tradeoff_runs: Vec<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            runs_root: default_runs_root(),
            recent: Vec::new(),
            config: UnlearnConfig::default(),
            smoothing: 0.6,
            tradeoff_runs: Vec::new(),
        }
    }
}

pub fn default_runs_root() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("mdu-workbench")
        .join("runs")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Curves,
    Tradeoff,
    Samples,
    Denoising,
    History,
}

impl Tab {
    const ALL: [(Tab, &'static str); 5] = [
        (Tab::Curves, "Curves"),
        (Tab::Tradeoff, "τ trade-off"),
        (Tab::Samples, "Samples"),
        (Tab::Denoising, "Denoising"),
        (Tab::History, "History"),
    ];
}

struct ActiveRun {
    events: Receiver<Event>,
    stop: StopFlag,
    from_queue: bool,
}

pub struct WorkbenchApp {
    pub settings: Settings,
    pub checkpoint: PathField<CheckpointInfo>,
    pub forget: PathField<FileInfo>,
    pub retain: PathField<FileInfo>,
    pub demo: Option<DemoPaths>,
    demo_job: Option<Job<Result<DemoPaths, String>>>,
    /// (value for `--device`, label)
    pub devices: Vec<(String, String)>,
    /// Why CUDA is not in the device list (shown in the picker), once the probe has answered.
    pub cuda_unavailable: Option<String>,
    devices_job: Option<Job<(Vec<(String, String)>, Option<String>)>>,
    available_memory: Option<u64>,
    memory_job: Option<(String, Job<Option<u64>>)>,
    /// The run on screen: the active one, or one opened from history.
    pub record: RunRecord,
    run: Option<ActiveRun>,
    pub queue: VecDeque<UnlearnConfig>,
    pub tab: Tab,
    pub confirm_stop: bool,
    /// Errors not yet acknowledged, shown one at a time.
    pub errors: VecDeque<String>,
    pub status: String,
    dialogs: Box<dyn Dialogs>,
    /// The Save model as… prompt: the destination folder as typed (or picked with Browse…).
    pub save_prompt: Option<String>,
    /// The "no dialog here, type paths" notice was given.
    dialog_notice: bool,
    save_dialog: Option<Job<Option<PathBuf>>>,
    save_job: Option<Job<Result<PathBuf, String>>>,
    export: Option<(Export, Job<Option<PathBuf>>)>,
    png_pending: Option<(PlotKind, PathBuf)>,
    plot_rects: Vec<(PlotKind, egui::Rect)>,
    pub history: Vec<HistoryEntry>,
    history_job: Option<Job<Vec<HistoryEntry>>>,
    pub overlay: Option<RunRecord>,
    samples: samples::SamplesView,
    pub denoise: denoise::DenoiseView,
    tradeoff: tradeoff::TradeoffView,
    pub prompt: String,
    pub prompt_answer: Option<Result<String, String>>,
    prompt_job: Option<Job<Result<String, String>>>,
    /// egui's CPU time per frame while a run is active (seconds).
    pub frame_times: Vec<f32>,
    started: std::time::Instant,
    /// Seconds since start as the animations see them; `Some` pins the clock (snapshot tests).
    pub fixed_clock: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Export {
    Csv,
    Png(PlotKind),
}

impl WorkbenchApp {
    pub fn new(settings: Settings, dialogs: Box<dyn Dialogs>) -> Self {
        let mut app = Self {
            settings,
            checkpoint: PathField::new("Model folder", PickKind::Folder, setup::inspect_checkpoint),
            forget: PathField::new("Forget set", PickKind::File, setup::inspect_file),
            retain: PathField::new("Retain set", PickKind::File, setup::inspect_file),
            demo: None,
            demo_job: Some(Job::spawn("demo", || {
                crate::demo::embedded::unpack().map_err(|e| format!("{e:#}"))
            })),
            devices: vec![
                ("auto".into(), AUTO_DEVICE.into()),
                ("cpu".into(), "CPU (ndarray)".into()),
            ],
            cuda_unavailable: None,
            devices_job: Some(Job::spawn("devices", || {
                let list = std::iter::once(("auto".to_string(), AUTO_DEVICE.to_string()))
                    .chain(
                        crate::device::list_devices()
                            .into_iter()
                            .map(|(d, label)| (d.to_string(), label)),
                    )
                    .collect();
                (list, crate::device::cuda_unavailable_reason())
            })),
            available_memory: None,
            memory_job: None,
            record: RunRecord::default(),
            run: None,
            queue: VecDeque::new(),
            tab: Tab::Curves,
            confirm_stop: false,
            errors: VecDeque::new(),
            status: "Opening the demo…".into(),
            dialogs,
            save_prompt: None,
            dialog_notice: false,
            save_dialog: None,
            save_job: None,
            export: None,
            png_pending: None,
            plot_rects: Vec::new(),
            history: Vec::new(),
            history_job: None,
            overlay: None,
            samples: Default::default(),
            denoise: Default::default(),
            tradeoff: Default::default(),
            prompt: String::new(),
            prompt_answer: None,
            prompt_job: None,
            frame_times: Vec::new(),
            started: std::time::Instant::now(),
            fixed_clock: None,
        };
        app.rescan_history();
        app
    }

    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    fn rescan_history(&mut self) {
        let root = self.settings.runs_root.clone();
        self.history_job = Some(Job::spawn("history", move || history::scan(&root)));
    }

    /// True when the inputs are the unpacked demo's, so the run also gets its retain-only model
    /// and utility files.
    fn inputs_are_demo(&self) -> bool {
        self.demo.as_ref().is_some_and(|d| {
            self.checkpoint.path_buf() == d.model
                && self.forget.path_buf() == d.forget
                && self.retain.path_buf() == d.retain
        })
    }

    fn use_demo(&mut self) {
        if let Some(d) = self.demo.clone() {
            self.checkpoint.set(&d.model);
            self.forget.set(&d.forget);
            self.retain.set(&d.retain);
        }
    }

    /// Collects finished background work and engine events.
    fn poll(&mut self) -> bool {
        let mut busy = false;
        if let Some(job) = &mut self.demo_job {
            busy = true;
            if let Some(result) = job.poll() {
                self.demo_job = None;
                match result {
                    Ok(d) => {
                        self.demo = Some(d);
                        if self.checkpoint.path.is_empty() {
                            self.use_demo();
                        }
                        self.status = "Demo loaded: press Start to unlearn its forget set.".into();
                    }
                    Err(e) => self
                        .errors
                        .push_back(format!("The embedded demo could not be unpacked: {e}")),
                }
            }
        }
        if let Some(job) = &mut self.devices_job {
            busy = true;
            if let Some((list, cuda_unavailable)) = job.poll() {
                self.devices = list;
                self.cuda_unavailable = cuda_unavailable;
                self.devices_job = None;
            }
        }
        let device = self.settings.config.device.clone();
        if self.memory_job.as_ref().is_none_or(|(d, _)| *d != device) {
            let d = device.clone();
            self.memory_job = Some((
                device.clone(),
                Job::spawn("memory", move || {
                    crate::device::DeviceChoice::parse(&d)
                        .ok()
                        .and_then(|c| c.memory_budget().available)
                }),
            ));
        }
        if let Some((_, job)) = &mut self.memory_job {
            if let Some(m) = job.poll() {
                self.available_memory = m;
            }
        }
        busy |= self.checkpoint.poll() | self.forget.poll() | self.retain.poll();
        if let Some(job) = &mut self.history_job {
            busy = true;
            if let Some(h) = job.poll() {
                self.history = h;
                self.history_job = None;
            }
        }
        busy |= self.denoise.poll(self.now());
        if let Some(job) = &mut self.prompt_job {
            busy = true;
            if let Some(a) = job.poll() {
                self.prompt_answer = Some(a);
                self.prompt_job = None;
            }
        }
        self.poll_save();
        if !self.dialog_notice && self.dialogs.unavailable() {
            self.dialog_notice = true;
            self.errors.push_back(DIALOG_UNAVAILABLE.into());
        }
        busy |= self.poll_engine();
        if self.run.is_none() {
            if let Some(next) = self.queue.pop_front() {
                self.start_with(next, true);
            }
        }
        busy || self.run.is_some() || self.save_dialog.is_some() || self.save_job.is_some()
    }

    fn now(&self) -> f64 {
        self.fixed_clock
            .unwrap_or_else(|| self.started.elapsed().as_secs_f64())
    }

    fn poll_engine(&mut self) -> bool {
        let Some(run) = &self.run else { return false };
        let mut ended = false;
        loop {
            match run.events.try_recv() {
                Ok(event) => {
                    if let Event::Failed { error } = &event {
                        self.errors.push_back(error.clone());
                    }
                    if let Event::Warning { message } = &event {
                        self.status = format!("Warning: {message}");
                    }
                    match &event {
                        // "Preparing GPU kernels: 37 compiled, 4 tuned (the first run …)"
                        Event::Kernels { message, .. } => self.status = message.clone(),
                        Event::Step { .. } if self.status.starts_with(KERNELS_STATUS) => {
                            self.status = "Running…".into()
                        }
                        _ => {}
                    }
                    let terminal = matches!(
                        event,
                        Event::Finished { .. } | Event::Stopped { .. } | Event::Failed { .. }
                    );
                    self.record.apply(event);
                    ended |= terminal;
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
            let from_queue = run.from_queue;
            self.run = None;
            self.confirm_stop = false;
            self.status = match &self.record.state {
                RunState::Finished => {
                    "Finished: the unlearned model is in the run folder; Save model as… copies it."
                        .into()
                }
                RunState::Stopped => {
                    "Stopped. The run folder is complete up to the last step.".into()
                }
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
        true
    }

    /// Starts a run with the setup panel's inputs. Errors name what is missing.
    pub fn start(&mut self) {
        let config = self.settings.config.clone();
        self.start_with(config, false);
    }

    fn start_with(&mut self, mut config: UnlearnConfig, from_queue: bool) {
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
        if self.inputs_are_demo() {
            config.demo = true;
            config.checkpoint = None;
            config.forget = None;
            config.retain = None;
        } else {
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
                self.settings.recent.retain(|r| *r != folder);
                self.settings.recent.insert(0, folder);
            }
            self.settings.recent.truncate(8);
        }
        let run_dir = self
            .settings
            .runs_root
            .join(history::run_name(&config, std::time::SystemTime::now()));
        let (events, stop, _handle) = engine::spawn(config, run_dir.clone(), false);
        self.record = RunRecord {
            state: RunState::Running,
            phase: "starting".into(),
            run_dir: Some(run_dir),
            ..Default::default()
        };
        self.frame_times.clear();
        self.run = Some(ActiveRun {
            events,
            stop,
            from_queue,
        });
        self.status = "Running…".into();
        self.tab = if from_queue { self.tab } else { Tab::Curves };
    }

    /// Asks the engine to stop (after the confirmation).
    pub fn stop(&mut self) {
        if let Some(run) = &self.run {
            run.stop.request();
            self.status = "Stopping…".into();
        }
        self.queue.clear();
        self.confirm_stop = false;
    }

    /// Save model as…: asks for a new folder, then copies the run's model there.
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

    fn browse_save_destination(&mut self) {
        let start = self
            .save_prompt
            .as_deref()
            .map(Path::new)
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        self.save_dialog = Some(self.dialogs.pick(PickRequest {
            kind: PickKind::NewFolder,
            title: "Save the unlearned model as (a new folder)".into(),
            start,
            filters: vec![],
            file_name: Some("unlearned-model".into()),
        }));
    }

    /// Copies the run's model to `dest` on a worker.
    fn save_to(&mut self, dest: PathBuf) {
        if let Some(src) = self.record.model_dir.clone() {
            self.save_job = Some(Job::spawn("save", move || copy_model(&src, &dest)));
            self.status = "Saving the model…".into();
        }
    }

    fn poll_save(&mut self) {
        if let Some(job) = &mut self.save_dialog {
            if let Some(answer) = job.poll() {
                self.save_dialog = None;
                if let (Some(dest), Some(prompt)) = (answer, &mut self.save_prompt) {
                    *prompt = dest.display().to_string();
                }
            }
        }
        if let Some(job) = &mut self.save_job {
            if let Some(result) = job.poll() {
                self.save_job = None;
                match result {
                    Ok(dest) => self.status = format!("Model saved to {}", dest.display()),
                    Err(e) => self.errors.push_back(e),
                }
            }
        }
        if let Some((what, job)) = &mut self.export {
            if let Some(answer) = job.poll() {
                let what = *what;
                self.export = None;
                if let Some(path) = answer {
                    match what {
                        Export::Csv => {
                            match crate::data::write_atomic(&path, self.record.to_csv().as_bytes())
                            {
                                Ok(()) => {
                                    self.status = format!("Series written to {}", path.display())
                                }
                                Err(e) => self.errors.push_back(format!("{}: {e}", path.display())),
                            }
                        }
                        Export::Png(kind) => self.png_pending = Some((kind, path)),
                    }
                }
            }
        }
    }

    fn ask_export(&mut self, what: Export) {
        let (name, ext) = match what {
            Export::Csv => ("series.csv".to_string(), "csv"),
            Export::Png(kind) => (
                format!(
                    "{}.png",
                    kind.title()
                        .to_lowercase()
                        .replace([' ', '(', ')', '.'], "_")
                ),
                "png",
            ),
        };
        self.export = Some((
            what,
            self.dialogs.pick(PickRequest {
                kind: PickKind::NewFile,
                title: format!("Export {ext}"),
                start: self.record.run_dir.clone(),
                filters: vec![(ext.to_uppercase(), vec![ext.into()])],
                file_name: Some(name),
            }),
        ));
    }

    fn write_frame_stats(&self) {
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

    /// The whole window; also what the headless UI tests drive.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let busy = self.poll();
        let ctx = ui.ctx().clone();
        if busy {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        self.shortcuts(&ctx);
        self.handle_screenshot(&ctx);
        egui::Panel::top("run_bar").show(ui, |ui| self.run_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("Status: {}", self.status));
                if let Some(d) = &self.record.run_dir {
                    ui.separator();
                    ui.label(format!("Run folder: {}", d.display()));
                }
            });
        });
        egui::Panel::left("setup")
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.setup_panel(ui));
            });
        egui::CentralPanel::default().show(ui, |ui| self.tabs(ui));
        self.modals(&ctx);
    }

    /// Only the tab area (the snapshot tests draw this: no machine-specific paths).
    pub fn show_tab(&mut self, ui: &mut egui::Ui) {
        if self.poll() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
        egui::CentralPanel::default().show(ui, |ui| self.tabs(ui));
    }

    fn tabs(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            for (tab, name) in Tab::ALL {
                ui.selectable_value(&mut self.tab, tab, name);
            }
        });
        ui.separator();
        match self.tab {
            Tab::Curves => self.curves_tab(ui),
            Tab::Tradeoff => self.tradeoff_tab(ui),
            Tab::Samples => self.samples_tab(ui),
            Tab::Denoising => self.denoise_tab(ui),
            Tab::History => self.history_tab(ui),
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        let start = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Enter);
        let stop = egui::KeyboardShortcut::new(egui::Modifiers::NONE, egui::Key::Escape);
        if ctx.input_mut(|i| i.consume_shortcut(&start)) && !self.is_running() {
            self.start();
        }
        if ctx.input_mut(|i| i.consume_shortcut(&stop)) && self.is_running() {
            self.confirm_stop = true;
        }
    }

    fn run_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading(APP_TITLE);
            ui.separator();
            let running = self.is_running();
            if ui
                .add_enabled(!running, egui::Button::new("▶ Start"))
                .on_hover_text("Unlearn the forget set with the settings on the left (Ctrl+Enter).")
                .clicked()
            {
                self.start();
            }
            if ui
                .add_enabled(running, egui::Button::new("⏹ Stop"))
                .on_hover_text("Stop the run (Esc); asks first. The run folder stays complete and resumable.")
                .clicked()
            {
                self.confirm_stop = true;
            }
            if ui
                .add_enabled(
                    self.record.model_dir.is_some() && self.save_job.is_none(),
                    egui::Button::new("💾 Save model as…"),
                )
                .on_hover_text("Copy the unlearned model (HF layout: config, safetensors, tokenizer) to a new folder.")
                .clicked()
            {
                self.save_model();
            }
            ui.separator();
            let progress = self.record.progress();
            let eta = self
                .record
                .eta_s()
                .map(|s| format!(" · ETA {}", fmt_duration(s)))
                .unwrap_or_default();
            let text = match &self.record.state {
                RunState::Idle => "idle".to_string(),
                RunState::Running => format!(
                    "{} · step {}/{}{eta}",
                    self.record.phase,
                    self.record.loss.last().map_or(0, |p| p[0] as usize),
                    self.record.steps_total
                ),
                RunState::Finished => "finished".to_string(),
                RunState::Stopped => "stopped".to_string(),
                RunState::Failed(_) => "failed".to_string(),
            };
            ui.add(
                egui::ProgressBar::new(progress)
                    .desired_width(320.0)
                    .text(text)
                    .animate(running),
            )
            .on_hover_text("Training progress; evaluations before and after add to it.");
            if let Some(f) = self.record.latest("forget", series::rouge_recall) {
                ui.label(format!("forget R-L {f:.3}"))
                    .on_hover_text("Latest forget ROUGE-L recall (lower is better).");
            }
            if let Some(r) = self.record.latest("retain", series::rouge_recall) {
                ui.label(format!("retain R-L {r:.3}"))
                    .on_hover_text("Latest retain ROUGE-L recall (higher is better).");
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                egui::widgets::global_theme_preference_buttons(ui);
            });
        });
    }

    fn setup_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Setup");
        let enabled = !self.is_running();
        ui.add_enabled_ui(enabled, |ui| {
            if ui
                .add_enabled(self.demo.is_some(), egui::Button::new("Use the embedded demo"))
                .on_hover_text("A tiny LLaDA-architecture model that memorised 30 fictitious people; 3 of them form the forget set.")
                .clicked()
            {
                self.use_demo();
            }
            if self.inputs_are_demo() {
                ui.label("Using the embedded demo (with its retain-only model and utility files).");
            }
            let recent = self.settings.recent.clone();
            self.checkpoint.show_row(
                ui,
                "An HF checkpoint folder: config.json, *.safetensors, tokenizer files (LLaDA or Dream).",
                self.dialogs.as_ref(),
                &recent,
            );
            setup::show_checkpoint_info(
                ui,
                &self.checkpoint.info,
                &self.settings.config.device,
                self.available_memory,
            );
            self.forget.show_row(
                ui,
                "What to forget: TOFU-format JSON or JSON lines (question, answer, …).",
                self.dialogs.as_ref(),
                &recent,
            );
            setup::show_file_info(ui, "forget_preview", &self.forget.info);
            self.retain.show_row(
                ui,
                "What to keep: TOFU-format JSON or JSON lines.",
                self.dialogs.as_ref(),
                &recent,
            );
            setup::show_file_info(ui, "retain_preview", &self.retain.info);
            ui.separator();
            setup::show_method(ui, &mut self.settings.config);
            ui.separator();
            if self.devices_job.is_none() {
                if let Some(notice) =
                    setup::gpu_notice(&self.devices, self.cuda_unavailable.as_deref())
                {
                    ui.label(egui::RichText::new(notice).color(ui.visuals().warn_fg_color));
                }
            }
            let device_label = ui.label("Device");
            let current = self.settings.config.device.clone();
            let shown = self
                .devices
                .iter()
                .find(|(d, _)| *d == current)
                .map_or(current.clone(), |(_, l)| l.clone());
            egui::ComboBox::from_id_salt("device")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for (d, label) in &self.devices {
                        ui.selectable_value(&mut self.settings.config.device, d.clone(), label);
                    }
                    if let Some(why) = &self.cuda_unavailable {
                        ui.add_enabled(false, egui::Label::new(format!("CUDA: unavailable, {why}")));
                    }
                })
                .response
                .labelled_by(device_label.id)
                .on_hover_text(match &self.cuda_unavailable {
                    None => "Where training runs: CUDA, a wgpu adapter, or the CPU.".to_string(),
                    Some(why) => format!(
                        "Where training runs: CUDA, a wgpu adapter, or the CPU.\nCUDA is unavailable: {why}."
                    ),
                });
            let runs_label = ui.label("Runs folder");
            let mut root = self.settings.runs_root.display().to_string();
            if ui
                .text_edit_singleline(&mut root)
                .labelled_by(runs_label.id)
                .on_hover_text("Every run writes its folder here (metrics, samples, checkpoints, the final model).")
                .changed()
            {
                self.settings.runs_root = PathBuf::from(root);
                self.rescan_history();
            }
        });
    }

    fn curves_tab(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let l = ui.label("Smoothing (EMA)");
            ui.add(egui::Slider::new(&mut self.settings.smoothing, 0.0..=0.99))
                .labelled_by(l.id)
                .on_hover_text("Exponential moving average of the loss curves: 0 = raw values.");
            if ui
                .button("Export CSV…")
                .on_hover_text("All series of this run as series,step,value rows.")
                .clicked()
            {
                self.ask_export(Export::Csv);
            }
            let overlay_name = self
                .overlay
                .as_ref()
                .and_then(|o| o.run_dir.as_ref())
                .and_then(|d| d.file_name())
                .map_or("none".to_string(), |n| n.to_string_lossy().into_owned());
            let mut pick: Option<Option<PathBuf>> = None;
            egui::ComboBox::from_label("Overlay")
                .selected_text(overlay_name)
                .show_ui(ui, |ui| {
                    if ui
                        .selectable_label(self.overlay.is_none(), "none")
                        .clicked()
                    {
                        pick = Some(None);
                    }
                    for h in &self.history {
                        if ui.selectable_label(false, &h.name).clicked() {
                            pick = Some(Some(h.dir.clone()));
                        }
                    }
                })
                .response
                .on_hover_text("Draw another run's curves dashed on the same axes.");
            match pick {
                Some(Some(dir)) => self.overlay = RunRecord::from_run_dir(&dir).ok(),
                Some(None) => self.overlay = None,
                None => {}
            }
        });
        if self.record.loss.is_empty() && self.record.evals.is_empty() {
            ui.label(if self.is_running() {
                "Waiting for the first steps…"
            } else {
                "Press Start: the loss and the forget / retain scores are plotted here as the model unlearns."
            });
        }
        // Two plots a row: loss and ROUGE-L first (what a newcomer watches), then the likelihood
        // scores, then utility.
        let height = ((ui.available_height() - 3.0 * 40.0) / 3.0).max(150.0);
        let mut rects = Vec::new();
        let mut export = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for row in PlotKind::ALL.chunks(2) {
                ui.columns(2, |cols| {
                    for (col, &kind) in cols.iter_mut().zip(row) {
                        let (rect, asked) = plots::show_plot(
                            col,
                            kind,
                            &self.record,
                            self.overlay.as_ref(),
                            self.settings.smoothing,
                            height,
                        );
                        rects.push((kind, rect));
                        if asked {
                            export = Some(kind);
                        }
                    }
                });
            }
        });
        self.plot_rects = rects;
        if let Some(kind) = export {
            self.ask_export(Export::Png(kind));
        }
        if self.png_pending.is_some() {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::UserData::default()));
        }
    }

    fn handle_screenshot(&mut self, ctx: &egui::Context) {
        let Some((kind, path)) = self.png_pending.clone() else {
            return;
        };
        let shot = ctx.input(|i| {
            i.events.iter().find_map(|e| match e {
                egui::Event::Screenshot { image, .. } => Some(image.clone()),
                _ => None,
            })
        });
        let Some(image) = shot else { return };
        self.png_pending = None;
        let Some((_, rect)) = self.plot_rects.iter().find(|(k, _)| *k == kind) else {
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

    fn tradeoff_tab(&mut self, ui: &mut egui::Ui) {
        let runs: Vec<HistoryEntry> = self
            .history
            .iter()
            .filter(|h| self.settings.tradeoff_runs.contains(&h.dir))
            .cloned()
            .collect();
        match self
            .tradeoff
            .show(ui, &self.settings.config, &runs, self.queue.len())
        {
            tradeoff::TradeoffAction::Queue(configs) => {
                self.queue.extend(configs);
            }
            tradeoff::TradeoffAction::Open(dir) => self.open_run(&dir),
            tradeoff::TradeoffAction::None => {}
        }
    }

    fn samples_tab(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let l = ui.label("Ask the model");
            ui.add(egui::TextEdit::singleline(&mut self.prompt).desired_width(420.0).hint_text("Who is …?"))
                .labelled_by(l.id)
                .on_hover_text("A free question to the current model: the unlearned one after a run, else the loaded one.");
            if ui.add_enabled(self.prompt_job.is_none() && !self.prompt.trim().is_empty(), egui::Button::new("Ask")).clicked() {
                let dir = self.record.model_dir.clone().unwrap_or_else(|| self.checkpoint.path_buf());
                let item = QaItem {
                    question: self.prompt.trim().to_string(),
                    answer: String::new(),
                    paraphrased_answer: None,
                    perturbed_answer: vec![],
                };
                let device = self.settings.config.device.clone();
                self.prompt_answer = None;
                self.prompt_job = Some(Job::spawn("ask", move || {
                    denoise::trace(&dir, &item, &device, Some(48)).map(|t| t.answer)
                }));
            }
            if self.prompt_job.is_some() {
                ui.spinner();
            }
        });
        match &self.prompt_answer {
            Some(Ok(a)) => {
                ui.label(format!("Answer: {a}"));
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            None => {}
        }
        ui.separator();
        self.samples.show(ui, &self.record);
    }

    fn denoise_tab(&mut self, ui: &mut egui::Ui) {
        let has_after = self.record.model_dir.is_some();
        let questions = match &self.forget.info {
            Some(Ok(info)) => &info.items[..],
            _ => &[],
        };
        if self.denoise.show(ui, questions, has_after) {
            if let Some(item) = questions.get(self.denoise.question).cloned() {
                self.denoise.compute(
                    item,
                    self.checkpoint.path_buf(),
                    self.record.model_dir.clone(),
                    self.settings.config.device.clone(),
                );
            }
        }
    }

    fn history_tab(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let n = self.history.len();
            ui.label(format!(
                "{n} run{} in {}",
                if n == 1 { "" } else { "s" },
                self.settings.runs_root.display()
            ));
            if ui.button("Refresh").clicked() {
                self.rescan_history();
            }
        });
        let mut open = None;
        let mut overlay = None;
        egui::ScrollArea::both().show(ui, |ui| {
            egui::Grid::new("history").striped(true).show(ui, |ui| {
                for h in [
                    "run",
                    "method",
                    "lr",
                    "steps",
                    "seed",
                    "forget R-L",
                    "retain R-L",
                    "utility",
                    "",
                ] {
                    ui.label(egui::RichText::new(h).strong());
                }
                ui.end_row();
                for h in &self.history {
                    ui.label(&h.name);
                    ui.label(h.short_label());
                    ui.label(format!("{:.1e}", h.learning_rate));
                    ui.label(h.steps.to_string());
                    ui.label(h.seed.to_string());
                    let pair = |i: usize| match (h.before, h.after) {
                        (Some(b), Some(a)) => {
                            let (b, a) = if i == 0 { (b.0, a.0) } else { (b.1, a.1) };
                            format!("{b:.3} -> {a:.3}")
                        }
                        _ if !h.finished => "stopped".into(),
                        _ => "–".into(),
                    };
                    ui.label(pair(0));
                    ui.label(pair(1));
                    ui.label(h.utility_after.map_or("–".into(), |u| format!("{u:.3}")));
                    ui.horizontal(|ui| {
                        if ui
                            .button("Open")
                            .on_hover_text("Show this run's curves and samples.")
                            .clicked()
                        {
                            open = Some(h.dir.clone());
                        }
                        if ui
                            .button("Overlay")
                            .on_hover_text("Draw this run dashed over the current one.")
                            .clicked()
                        {
                            overlay = Some(h.dir.clone());
                        }
                    });
                    ui.end_row();
                }
            });
        });
        if let Some(d) = open {
            self.open_run(&d);
        }
        if let Some(d) = overlay {
            self.overlay = RunRecord::from_run_dir(&d).ok();
            self.tab = Tab::Curves;
        }
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

    fn modals(&mut self, ctx: &egui::Context) {
        if self.confirm_stop {
            let modal = egui::Modal::new(egui::Id::new("confirm_stop")).show(ctx, |ui| {
                ui.heading("Stop the run?");
                ui.label("Training stops within about a second. The run folder stays complete up to the last step and can be resumed with `mdu unlearn --resume`.");
                let mut choice = None;
                ui.horizontal(|ui| {
                    if ui.button("Stop run").clicked() {
                        choice = Some(true);
                    }
                    if ui.button("Keep running").clicked() {
                        choice = Some(false);
                    }
                });
                choice
            });
            match modal.inner {
                Some(true) => self.stop(),
                Some(false) => self.confirm_stop = false,
                None if modal.should_close() => self.confirm_stop = false,
                None => {}
            }
        } else if let Some(error) = self.errors.front().cloned() {
            let modal = egui::Modal::new(egui::Id::new("error")).show(ctx, |ui| {
                ui.heading("Something went wrong");
                ui.label(&error);
                ui.button("OK").clicked()
            });
            if modal.inner || modal.should_close() {
                self.errors.pop_front();
            }
        } else if self.save_prompt.is_some() {
            self.save_modal(ctx);
        }
    }

    fn save_modal(&mut self, ctx: &egui::Context) {
        let browsing = self.save_dialog.is_some();
        let modal = egui::Modal::new(egui::Id::new("save_model")).show(ctx, |ui| {
            ui.heading("Save the unlearned model");
            ui.label("A new folder in the Hugging Face layout (config, safetensors, tokenizer). It must not exist yet; the run folder is left as it is.");
            let mut choice = None;
            if let Some(dest) = &mut self.save_prompt {
                ui.horizontal(|ui| {
                    let l = ui.label("Destination folder");
                    ui.add(egui::TextEdit::singleline(dest).desired_width(420.0))
                        .labelled_by(l.id);
                });
            }
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(!browsing, egui::Button::new("Browse…"))
                    .on_hover_text("Pick the folder with the system dialog (needs a desktop portal on Linux).")
                    .clicked()
                {
                    choice = Some("browse");
                }
                if ui.button("Save").clicked() {
                    choice = Some("save");
                }
                if ui.button("Cancel").clicked() {
                    choice = Some("cancel");
                }
            });
            choice
        });
        match modal.inner {
            Some("browse") => self.browse_save_destination(),
            Some("save") => {
                let dest = self.save_prompt.take().unwrap_or_default();
                if dest.trim().is_empty() {
                    self.errors
                        .push_back("Save model as…: type a destination folder.".into());
                } else {
                    self.save_to(PathBuf::from(dest.trim()));
                }
            }
            Some(_) => self.save_prompt = None,
            None if modal.should_close() && !browsing => self.save_prompt = None,
            None => {}
        }
    }
}

/// Copies a saved model folder to `dest` (which must not exist yet), through a temporary sibling
/// renamed into place, so `dest` is either complete or absent.
pub fn copy_model(src: &Path, dest: &Path) -> Result<PathBuf, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", dest.display());
    if dest.exists()
        && std::fs::read_dir(dest)
            .map_err(|e| fail(&e))?
            .next()
            .is_some()
    {
        return Err(fail(
            &"the folder exists and is not empty; choose a new one",
        ));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.partial-{}",
        dest.file_name()
            .map_or("model".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let copy = || -> std::io::Result<()> {
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), tmp.join(entry.file_name()))?;
            }
        }
        if dest.exists() {
            std::fs::remove_dir(dest)?;
        }
        std::fs::rename(&tmp, dest)
    };
    copy().map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        fail(&e)
    })?;
    Ok(dest.to_path_buf())
}

fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl eframe::App for WorkbenchApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if self.is_running() {
            if let Some(t) = frame.info().cpu_usage {
                self.frame_times.push(t);
            }
        }
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = serde_json::to_string(&self.settings) {
            storage.set_string(SETTINGS_KEY, text);
        }
    }

    fn on_exit(&mut self) {
        if let Some(run) = &self.run {
            run.stop.request();
        }
        self.write_frame_stats();
    }
}
