//! The window's state and its frame: collect what arrived (session replies, run events, jobs),
//! draw the panels, then apply the actions they returned.

use std::collections::VecDeque;
use std::path::PathBuf;

use eframe::egui;

use super::actions::{Action, Export};
use super::dialogs::{Dialogs, PickKind};
use super::history::{self, HistoryEntry};
use super::jobs::{ActiveRun, ConfigDialogs, CostJob, ExportState, SaveState};
use super::series::RunRecord;
use super::settings::Settings;
use super::setup::{file_reader, FileInfo, PathField};
use super::{curves, denoise, modals, run_bar, samples, setup_panel, tradeoff, Tab};
use crate::demo::embedded::DemoPaths;
use crate::session::{DeviceList, DeviceMemory, ModelInfo, Pending, Session, Trace};
use crate::unlearn::config::UnlearnConfig;

/// Said once when the system file dialog cannot open.
pub const DIALOG_UNAVAILABLE: &str = "The system file dialog did not open: this desktop has no file-dialog portal (xdg-desktop-portal). Type or paste paths instead: every Open… has an editable path field beside it, and Save model as… has one in its prompt.";

pub struct WorkbenchApp {
    pub settings: Settings,
    /// The engine: it owns the models; the window only sends it commands.
    pub(super) session: Session,
    pub checkpoint: PathField<ModelInfo>,
    pub forget: PathField<FileInfo>,
    pub retain: PathField<FileInfo>,
    pub demo: Option<DemoPaths>,
    demo_job: Option<Pending<Result<DemoPaths, String>>>,
    /// (value for `--device`, label)
    pub devices: Vec<(String, String)>,
    /// Why CUDA is not in the device list (shown in the picker), once the probe has answered.
    pub cuda_unavailable: Option<String>,
    devices_job: Option<Pending<DeviceList>>,
    device_memory: Option<DeviceMemory>,
    memory_job: Option<(String, Pending<Option<DeviceMemory>>)>,
    /// The longest training item in tokens, for the memory plan; keyed by (model, forget, retain).
    longest_item: Option<usize>,
    longest_job: Option<([PathBuf; 3], Pending<Result<usize, String>>)>,
    /// The run on screen: the active one, or one opened from history.
    pub record: RunRecord,
    pub(super) run: Option<ActiveRun>,
    pub queue: VecDeque<UnlearnConfig>,
    pub tab: Tab,
    pub confirm_stop: bool,
    /// Errors not yet acknowledged, shown one at a time.
    pub errors: VecDeque<String>,
    pub status: String,
    pub(super) dialogs: Box<dyn Dialogs>,
    pub(super) config_dialogs: ConfigDialogs,
    pub cost: CostJob,
    /// The Save model as… prompt: the destination folder as typed (or picked with Browse…).
    pub save_prompt: Option<String>,
    pub(super) save: SaveState,
    pub(super) export: ExportState,
    /// The "no dialog here, type paths" notice was given.
    dialog_notice: bool,
    pub history: Vec<HistoryEntry>,
    history_job: Option<Pending<Vec<HistoryEntry>>>,
    pub overlay: Option<RunRecord>,
    samples: samples::SamplesView,
    pub denoise: denoise::DenoiseView,
    pub inside: super::jobs::InsideState,
    tradeoff: tradeoff::TradeoffView,
    pub prompt: String,
    pub prompt_answer: Option<Result<String, String>>,
    /// The Ask box's question being answered (a trace with free answer slots).
    pub(super) prompt_job: Option<Pending<Result<Trace, String>>>,
    /// egui's CPU time per frame while a run is active (seconds).
    pub frame_times: Vec<f32>,
    started: std::time::Instant,
    /// Seconds since start as the animations see them; `Some` pins the clock (snapshot tests).
    pub fixed_clock: Option<f64>,
}

impl WorkbenchApp {
    pub fn new(settings: Settings, dialogs: Box<dyn Dialogs>) -> Self {
        let session = Session::start();
        let models = session.clone();
        let before_probe = DeviceList::before_probe();
        let mut app = Self {
            settings,
            checkpoint: PathField::new(
                "Model folder",
                PickKind::Folder,
                Box::new(move |dir| models.open_model(dir)),
            ),
            forget: PathField::new("Forget set", PickKind::File, file_reader()),
            retain: PathField::new("Retain set", PickKind::File, file_reader()),
            demo: None,
            demo_job: Some(session.unpack_demo()),
            devices: before_probe.devices,
            cuda_unavailable: None,
            devices_job: Some(session.list_devices()),
            session,
            device_memory: None,
            memory_job: None,
            longest_item: None,
            longest_job: None,
            record: RunRecord::default(),
            run: None,
            queue: VecDeque::new(),
            tab: Tab::Curves,
            confirm_stop: false,
            errors: VecDeque::new(),
            status: "Opening the demo…".into(),
            dialogs,
            config_dialogs: Default::default(),
            cost: CostJob::default(),
            save_prompt: None,
            save: SaveState::default(),
            export: ExportState::default(),
            dialog_notice: false,
            history: Vec::new(),
            history_job: None,
            overlay: None,
            samples: Default::default(),
            denoise: Default::default(),
            inside: Default::default(),
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

    /// No background work is pending (demo, device list, free memory, file checks, history,
    /// traces, a run, a save): the next frame lays out as this one did.
    pub fn is_settled(&self) -> bool {
        self.demo_job.is_none()
            && self.devices_job.is_none()
            && self
                .memory_job
                .as_ref()
                .is_none_or(|(_, j)| !j.is_pending())
            && self
                .longest_job
                .as_ref()
                .is_none_or(|(_, j)| !j.is_pending())
            && !self.config_dialogs.is_pending()
            && self.cost.pending.is_none()
            && !self.checkpoint.is_pending()
            && !self.forget.is_pending()
            && !self.retain.is_pending()
            && self.history_job.is_none()
            && self.prompt_job.is_none()
            && self.run.is_none()
            && !self.save.is_busy()
    }

    pub(super) fn rescan_history(&mut self) {
        let root = self.settings.runs_root.clone();
        self.history_job = Some(Pending::spawn("history", move || history::scan(&root)));
    }

    /// True when the inputs are the unpacked demo's, so the run also gets its retain-only model
    /// and utility files.
    pub(super) fn inputs_are_demo(&self) -> bool {
        self.demo.as_ref().is_some_and(|d| {
            self.checkpoint.path_buf() == d.model
                && self.forget.path_buf() == d.forget
                && self.retain.path_buf() == d.retain
        })
    }

    pub(super) fn use_demo(&mut self) {
        if let Some(d) = self.demo.clone() {
            self.checkpoint.set(&d.model);
            self.forget.set(&d.forget);
            self.retain.set(&d.retain);
        }
    }

    pub(super) fn now(&self) -> f64 {
        self.fixed_clock
            .unwrap_or_else(|| self.started.elapsed().as_secs_f64())
    }

    /// Collects finished background work and engine events; true while something is pending.
    fn poll(&mut self) -> bool {
        let mut busy = self.poll_setup();
        busy |= self.poll_config_files();
        busy |= self.poll_cost();
        busy |= self.checkpoint.poll() | self.forget.poll() | self.retain.poll();
        if let Some(job) = &mut self.history_job {
            busy = true;
            if let Some(h) = job.poll() {
                self.history = h;
                self.history_job = None;
            }
        }
        busy |= self.denoise.poll(self.now());
        if let Some(job) = &mut self.inside.job {
            busy = true;
            if let Some(traces) = job.poll() {
                self.inside.traces = Some(traces);
                self.inside.job = None;
            }
        }
        if let Some(job) = &mut self.prompt_job {
            busy = true;
            if let Some(a) = job.poll() {
                self.prompt_answer = Some(a.map(|t| t.answer));
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
        busy || self.run.is_some() || self.save.is_busy()
    }

    /// The demo, the device list and the chosen device's free memory.
    fn poll_setup(&mut self) -> bool {
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
            if let Some(list) = job.poll() {
                self.devices = list.devices;
                self.cuda_unavailable = list.cuda_unavailable;
                self.devices_job = None;
            }
        }
        let device = self.settings.config.device.clone();
        if self.memory_job.as_ref().is_none_or(|(d, _)| *d != device) {
            let job = self.session.device_memory(&device);
            self.memory_job = Some((device, job));
        }
        if let Some((_, job)) = &mut self.memory_job {
            if let Some(m) = job.poll() {
                self.device_memory = m;
            }
        }
        self.poll_longest_item();
        busy
    }

    /// Asks the engine for the longest training item whenever the three inputs change (and read).
    fn poll_longest_item(&mut self) {
        let ready = self.checkpoint.is_ok() && self.forget.is_ok() && self.retain.is_ok();
        let key = [
            self.checkpoint.path_buf(),
            self.forget.path_buf(),
            self.retain.path_buf(),
        ];
        if ready && self.longest_job.as_ref().is_none_or(|(k, _)| *k != key) {
            let job = self
                .session
                .longest_item(key[0].clone(), vec![key[1].clone(), key[2].clone()]);
            self.longest_item = None;
            self.longest_job = Some((key, job));
        }
        if let Some((_, job)) = &mut self.longest_job {
            if let Some(result) = job.poll() {
                self.longest_item = result.ok();
            }
        }
    }

    /// The whole window; also what the headless UI tests drive.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let busy = self.poll();
        let ctx = ui.ctx().clone();
        if busy {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        let mut actions = run_bar::shortcuts(&ctx, self.is_running());
        self.handle_screenshot(&ctx);
        let bar = run_bar::RunBarInput {
            record: &self.record,
            running: self.is_running(),
            can_save: self.record.model_dir.is_some() && self.save.job.is_none(),
        };
        egui::Panel::top("run_bar").show(ui, |ui| actions.extend(run_bar::show(ui, &bar)));
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
                egui::ScrollArea::vertical().show(ui, |ui| {
                    actions.extend(setup_panel::show(ui, self.setup_input()))
                });
            });
        egui::CentralPanel::default().show(ui, |ui| actions.extend(self.tabs(ui)));
        let modals = modals::ModalsInput {
            confirm_stop: self.confirm_stop,
            error: self.errors.front().map(String::as_str),
            save_prompt: &mut self.save_prompt,
            browsing: self.save.dialog.is_some(),
        };
        actions.extend(modals::show(&ctx, modals));
        self.apply(actions);
    }

    fn setup_input(&mut self) -> setup_panel::SetupInput<'_> {
        let using_demo = self.inputs_are_demo();
        let cost = self.cost_line();
        setup_panel::SetupInput {
            checkpoint: &mut self.checkpoint,
            forget: &mut self.forget,
            retain: &mut self.retain,
            settings: &mut self.settings,
            dialogs: self.dialogs.as_ref(),
            running: self.run.is_some(),
            demo_ready: self.demo.is_some(),
            using_demo,
            devices: &self.devices,
            cuda_unavailable: self.cuda_unavailable.as_deref(),
            devices_listed: self.devices_job.is_none(),
            device_memory: self.device_memory,
            longest_item: self.longest_item,
            cost,
        }
    }

    /// Only the tab area (the snapshot tests draw this: no machine-specific paths).
    pub fn show_tab(&mut self, ui: &mut egui::Ui) {
        if self.poll() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
        let mut actions = Vec::new();
        egui::CentralPanel::default().show(ui, |ui| actions = self.tabs(ui));
        self.apply(actions);
    }

    fn tabs(&mut self, ui: &mut egui::Ui) -> Vec<Action> {
        ui.horizontal(|ui| {
            for (tab, name) in Tab::ALL {
                ui.selectable_value(&mut self.tab, tab, name);
            }
        });
        ui.separator();
        match self.tab {
            Tab::Curves => self.curves_tab(ui),
            Tab::Tradeoff => {
                let runs: Vec<HistoryEntry> = self
                    .history
                    .iter()
                    .filter(|h| self.settings.tradeoff_runs.contains(&h.dir))
                    .cloned()
                    .collect();
                let queued = self.queue.len();
                self.tradeoff
                    .show(ui, &self.settings.config, &runs, queued)
                    .into_iter()
                    .collect()
            }
            Tab::Samples => {
                let actions = samples::ask_box(
                    ui,
                    &mut self.prompt,
                    self.prompt_job.is_some(),
                    &self.prompt_answer,
                );
                ui.separator();
                self.samples.show(ui, &self.record);
                actions
            }
            Tab::Denoising => {
                let has_after = self.record.model_dir.is_some();
                let questions = match &self.forget.info {
                    Some(Ok(info)) => &info.items[..],
                    _ => &[],
                };
                let asked = self.denoise.show(ui, questions, has_after);
                match (asked, questions.get(self.denoise.question)) {
                    (true, Some(item)) => vec![Action::Denoise(item.clone())],
                    _ => Vec::new(),
                }
            }
            Tab::Inside => self.inside_tab(ui),
            Tab::Privacy => {
                super::privacy::show_tab(ui, &self.record);
                Vec::new()
            }
            Tab::History => history::show_tab(ui, &self.history, &self.settings.runs_root),
            Tab::Help => {
                super::help::show_tab(ui);
                Vec::new()
            }
        }
    }

    fn inside_tab(&mut self, ui: &mut egui::Ui) -> Vec<Action> {
        let input = super::inside::InsideInput {
            record: &self.record,
            can_trace: self.checkpoint.path_buf().is_dir() && self.forget.is_ok(),
            has_after: self.record.model_dir.is_some(),
        };
        let (actions, rects) = super::inside::show(ui, &mut self.inside, &input);
        self.export.plot_rects = rects;
        self.request_png_screenshot(ui);
        actions
    }

    /// Asks for this frame's screenshot when a plot's PNG is waiting for it.
    fn request_png_screenshot(&self, ui: &egui::Ui) {
        if self.export.png_pending.is_some() {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::UserData::default()));
        }
    }

    fn curves_tab(&mut self, ui: &mut egui::Ui) -> Vec<Action> {
        let view = curves::CurvesInput {
            record: &self.record,
            overlay: self.overlay.as_ref(),
            history: &self.history,
            running: self.is_running(),
        };
        let (actions, rects) = curves::show(ui, &view, &mut self.settings.smoothing);
        self.export.plot_rects = rects;
        self.request_png_screenshot(ui);
        actions
    }

    /// Applies what the panels asked for, in order.
    pub fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.apply_one(action);
        }
    }

    fn apply_one(&mut self, action: Action) {
        match action {
            Action::Start if !self.is_running() => self.start(),
            Action::Start => {}
            Action::AskStop if self.is_running() => self.confirm_stop = true,
            Action::AskStop => {}
            Action::Stop => self.stop(),
            Action::KeepRunning => self.confirm_stop = false,
            Action::UseDemo => self.use_demo(),
            Action::ApplyPreset(index) => self.apply_preset(index),
            Action::BrowseDataRoot => self.browse_data_root(),
            Action::OpenConfig => self.ask_open_config(),
            Action::EstimateCost => self.ask_cost(),
            Action::SaveConfig => self.ask_save_config(),
            Action::SetRunsRoot(root) => {
                self.settings.runs_root = root;
                self.rescan_history();
            }
            Action::RescanHistory => self.rescan_history(),
            Action::OpenRun(dir) => self.open_run(&dir),
            Action::ResumeRun(dir) => self.resume_run(&dir),
            Action::Overlay { dir, show } => {
                self.overlay = dir.and_then(|d| RunRecord::from_run_dir(&d).ok());
                if show {
                    self.tab = Tab::Curves;
                }
            }
            Action::Export(what) => self.ask_export(what),
            Action::Queue(configs) => self.queue.extend(configs),
            Action::Ask(question) => self.ask(question),
            Action::Denoise(item) => {
                let before = self.checkpoint.path_buf();
                let after = self.record.model_dir.clone();
                let device = self.settings.config.device.clone();
                self.denoise
                    .compute(&self.session, item, before, after, device);
            }
            Action::TraceInside => self.trace_inside(),
            Action::SaveModel => self.save_model(),
            Action::BrowseSaveDestination => self.browse_save_destination(),
            Action::SaveTo(dest) => self.save_to(dest),
            Action::CancelSave => self.save_prompt = None,
            Action::DismissError => {
                self.errors.pop_front();
            }
            Action::ShowTab(tab) => self.tab = tab,
        }
    }

    /// The file name an export offers, and its extension.
    pub(super) fn export_kind_name(what: Export) -> (String, &'static str) {
        match what {
            Export::Csv => ("series.csv".to_string(), "csv"),
            Export::InsideCsv => ("kl_trace.csv".to_string(), "csv"),
            Export::Png(kind) => (
                format!(
                    "{}.png",
                    kind.title()
                        .to_lowercase()
                        .replace([' ', '(', ')', '.'], "_")
                ),
                "png",
            ),
        }
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
        self.settings.store(storage);
    }

    fn on_exit(&mut self) {
        if let Some(run) = &self.run {
            run.handle.stop.request();
        }
        self.write_frame_stats();
    }
}
