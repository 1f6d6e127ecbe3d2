//! The bar along the top: Start, Stop, Save model as…, the progress of the run on screen and its
//! latest forget / retain scores.

use eframe::egui;

use super::actions::Action;
use super::series::{self, RunRecord, RunState};
use super::APP_TITLE;
use crate::unlearn::cost::duration;

/// Ctrl+Enter starts, Esc asks to stop.
pub fn shortcuts(ctx: &egui::Context, running: bool) -> Vec<Action> {
    let start = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Enter);
    let stop = egui::KeyboardShortcut::new(egui::Modifiers::NONE, egui::Key::Escape);
    let mut actions = Vec::new();
    if ctx.input_mut(|i| i.consume_shortcut(&start)) && !running {
        actions.push(Action::Start);
    }
    if ctx.input_mut(|i| i.consume_shortcut(&stop)) && running {
        actions.push(Action::AskStop);
    }
    actions
}

/// What the bar shows.
pub struct RunBarInput<'a> {
    pub record: &'a RunRecord,
    pub running: bool,
    /// A model can be saved (a run produced one and no copy is under way).
    pub can_save: bool,
}

pub fn show(ui: &mut egui::Ui, bar: &RunBarInput) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        ui.heading(APP_TITLE);
        ui.separator();
        let running = bar.running;
        if ui
            .add_enabled(!running, egui::Button::new("▶ Start"))
            .on_hover_text("Unlearn the forget set with the settings on the left (Ctrl+Enter).")
            .clicked()
        {
            actions.push(Action::Start);
        }
        if ui
            .add_enabled(running, egui::Button::new("⏹ Stop"))
            .on_hover_text("Stop the run (Esc); asks first. The run folder stays complete and resumable.")
            .clicked()
        {
            actions.push(Action::AskStop);
        }
        if ui
            .add_enabled(bar.can_save, egui::Button::new("💾 Save model as…"))
            .on_hover_text("Copy the unlearned model (HF layout: config, safetensors, tokenizer) to a new folder.")
            .clicked()
        {
            actions.push(Action::SaveModel);
        }
        ui.separator();
        progress(ui, bar.record, running);
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            egui::widgets::global_theme_preference_buttons(ui);
        });
    });
    actions
}

/// The progress bar (phase, step, ETA) and the latest ROUGE-L scores.
fn progress(ui: &mut egui::Ui, record: &RunRecord, running: bool) {
    let eta = record
        .eta_s()
        .map(|s| format!(" · ETA {}", duration(s)))
        .unwrap_or_default();
    let text = match &record.state {
        RunState::Idle => "idle".to_string(),
        RunState::Running => format!(
            "{} · step {}/{}{eta}",
            record.phase,
            record.loss.last().map_or(0, |p| p[0] as usize),
            record.steps_total
        ),
        RunState::Finished => "finished".to_string(),
        RunState::Stopped => "stopped".to_string(),
        RunState::Failed(_) => "failed".to_string(),
    };
    ui.add(
        egui::ProgressBar::new(record.progress())
            .desired_width(320.0)
            .text(text)
            .animate(running),
    )
    .on_hover_text("Training progress; evaluations before and after add to it.");
    if let Some(f) = record.latest("forget", series::rouge_recall) {
        ui.label(format!("forget R-L {f:.3}"))
            .on_hover_text("Latest forget ROUGE-L recall (lower is better).");
    }
    if let Some(r) = record.latest("retain", series::rouge_recall) {
        ui.label(format!("retain R-L {r:.3}"))
            .on_hover_text("Latest retain ROUGE-L recall (higher is better).");
    }
}
