//! The Curves tab: loss and scores of the run on screen (another run dashed over it), smoothing,
//! and exports of the series and of each plot.

use eframe::egui;

use super::actions::{Action, Export};
use super::history::HistoryEntry;
use super::plots::{self, PlotKind};
use super::series::RunRecord;

/// What the tab draws.
pub struct CurvesInput<'a> {
    pub record: &'a RunRecord,
    pub overlay: Option<&'a RunRecord>,
    pub history: &'a [HistoryEntry],
    pub running: bool,
}

/// Draws the tab; returns what was asked and where each plot was drawn (for PNG exports).
pub fn show(
    ui: &mut egui::Ui,
    view: &CurvesInput,
    smoothing: &mut f64,
) -> (Vec<Action>, Vec<(PlotKind, egui::Rect)>) {
    let mut actions = toolbar(ui, view, smoothing);
    if view.record.loss.is_empty() && view.record.evals.is_empty() {
        ui.label(if view.running {
            "Waiting for the first steps…"
        } else {
            "Press Start: the loss and the forget / retain scores are plotted here as the model unlearns."
        });
    }
    // Two plots a row: loss and ROUGE-L first (what a newcomer watches), then the likelihood
    // scores, then utility.
    let height = ((ui.available_height() - 3.0 * 40.0) / 3.0).max(150.0);
    let mut rects = Vec::new();
    egui::ScrollArea::vertical().show(ui, |ui| {
        for row in PlotKind::ALL.chunks(2) {
            ui.columns(2, |cols| {
                for (col, &kind) in cols.iter_mut().zip(row) {
                    let (rect, asked) =
                        plots::show_plot(col, kind, view.record, view.overlay, *smoothing, height);
                    rects.push((kind, rect));
                    if asked {
                        actions.push(Action::Export(Export::Png(kind)));
                    }
                }
            });
        }
    });
    (actions, rects)
}

/// Smoothing, Export CSV… and the overlay picker.
fn toolbar(ui: &mut egui::Ui, view: &CurvesInput, smoothing: &mut f64) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let l = ui.label("Smoothing (EMA)");
        ui.add(egui::Slider::new(smoothing, 0.0..=0.99))
            .labelled_by(l.id)
            .on_hover_text("Exponential moving average of the loss curves: 0 = raw values.");
        if ui
            .button("Export CSV…")
            .on_hover_text("All series of this run as series,step,value rows.")
            .clicked()
        {
            actions.push(Action::Export(Export::Csv));
        }
        let overlay_name = view
            .overlay
            .and_then(|o| o.run_dir.as_ref())
            .and_then(|d| d.file_name())
            .map_or("none".to_string(), |n| n.to_string_lossy().into_owned());
        egui::ComboBox::from_label("Overlay")
            .selected_text(overlay_name)
            .show_ui(ui, |ui| {
                if ui
                    .selectable_label(view.overlay.is_none(), "none")
                    .clicked()
                {
                    actions.push(Action::Overlay {
                        dir: None,
                        show: false,
                    });
                }
                for h in view.history {
                    if ui.selectable_label(false, &h.name).clicked() {
                        actions.push(Action::Overlay {
                            dir: Some(h.dir.clone()),
                            show: false,
                        });
                    }
                }
            })
            .response
            .on_hover_text("Draw another run's curves dashed on the same axes.");
    });
    actions
}
