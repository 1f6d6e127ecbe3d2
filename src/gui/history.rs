//! Past runs: every run directory under the runs folder, with its settings and outcome, read from
//! `config.toml` and `summary.json` (so the list survives restarts and includes CLI runs there),
//! and the History tab that lists them.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::actions::Action;
use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::run_dir::{read_summary, RunDir, When};
use crate::unlearn::Method;

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub dir: PathBuf,
    pub name: String,
    pub method: Method,
    pub tau: f64,
    pub learning_rate: f64,
    pub steps: usize,
    pub seed: u64,
    /// (forget, retain) ROUGE-L recall before and after, when the run finished.
    pub before: Option<(f64, f64)>,
    pub after: Option<(f64, f64)>,
    pub utility_after: Option<f64>,
    pub finished: bool,
    /// Bytes of the run folder (checkpoints, model, logs).
    pub size_bytes: u64,
    /// A run that did not finish: the step its newest checkpoint holds (where Resume continues).
    pub resume_step: Option<usize>,
}

impl HistoryEntry {
    pub fn read(dir: &Path) -> Option<Self> {
        let config = UnlearnConfig::from_toml_file(&dir.join(RunDir::CONFIG)).ok()?;
        let summary = read_summary(dir).ok();
        let run_dir = RunDir::new(dir.to_path_buf());
        let pair = |when: When| {
            let s = summary.as_ref()?;
            Some((s.rouge_l(when, "forget")?, s.rouge_l(when, "retain")?))
        };
        Some(Self {
            name: dir.file_name()?.to_string_lossy().into_owned(),
            dir: dir.to_path_buf(),
            method: config.method,
            tau: config.params.tau,
            learning_rate: config.learning_rate,
            steps: config.steps,
            seed: config.seed,
            before: pair(When::Before),
            after: pair(When::After),
            utility_after: summary
                .as_ref()
                .and_then(|s| s.after.as_ref()?.model_utility),
            finished: summary.is_some(),
            size_bytes: run_dir.size_bytes(),
            resume_step: summary.is_none().then(|| run_dir.resume_step()).flatten(),
        })
    }

    /// "MDU τ=0.5", "GA", …
    pub fn short_label(&self) -> String {
        match self.method {
            Method::Mdu => format!("MDU τ={}", self.tau),
            m => m.label().to_string(),
        }
    }
}

/// Every run under `root`, newest first (names start with a timestamp).
pub fn scan(root: &Path) -> Vec<HistoryEntry> {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<HistoryEntry> = dirs
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|p| HistoryEntry::read(&p))
        .collect();
    out.sort_by(|a, b| b.name.cmp(&a.name));
    out
}

const COLUMNS: [&str; 10] = [
    "run",
    "method",
    "lr",
    "steps",
    "seed",
    "forget R-L",
    "retain R-L",
    "utility",
    "size",
    "",
];

/// The History tab: one row per run with Open and Overlay.
pub fn show_tab(ui: &mut egui::Ui, history: &[HistoryEntry], root: &Path) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let n = history.len();
        ui.label(format!(
            "{n} run{} in {}",
            if n == 1 { "" } else { "s" },
            root.display()
        ));
        if ui.button("Refresh").clicked() {
            actions.push(Action::RescanHistory);
        }
    });
    egui::ScrollArea::both().show(ui, |ui| {
        egui::Grid::new("history").striped(true).show(ui, |ui| {
            for h in COLUMNS {
                ui.label(egui::RichText::new(h).strong());
            }
            ui.end_row();
            for h in history {
                show_row(ui, h, &mut actions);
                ui.end_row();
            }
        });
    });
    actions
}

fn show_row(ui: &mut egui::Ui, h: &HistoryEntry, actions: &mut Vec<Action>) {
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
    ui.label(super::setup::human_bytes(h.size_bytes));
    ui.horizontal(|ui| {
        if let Some(step) = h.resume_step {
            if ui
                .button("Resume")
                .on_hover_text(format!(
                    "Continue this run from its checkpoint at step {step} (as mdu unlearn --resume)."
                ))
                .clicked()
            {
                actions.push(Action::ResumeRun(h.dir.clone()));
            }
        }
        if ui
            .button("Open")
            .on_hover_text("Show this run's curves and samples.")
            .clicked()
        {
            actions.push(Action::OpenRun(h.dir.clone()));
        }
        if ui
            .button("Overlay")
            .on_hover_text("Draw this run dashed over the current one.")
            .clicked()
        {
            actions.push(Action::Overlay {
                dir: Some(h.dir.clone()),
                show: true,
            });
        }
    });
}
