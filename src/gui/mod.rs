//! The workbench window. For now a skeleton that proves the GUI stack (eframe + egui_plot on the
//! same wgpu as Burn): a title bar, an empty loss plot and a status line. The engine never runs on
//! this thread; later issues drive it through plain events from a worker.

use eframe::egui;
use egui_plot::{Legend, Plot};

pub const APP_TITLE: &str = "MDU Workbench";

pub fn run() -> eframe::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(APP_TITLE)
            .with_inner_size([1100.0, 720.0]),
        ..Default::default()
    };
    eframe::run_native(
        APP_TITLE,
        options,
        Box::new(|_cc| Ok(Box::new(WorkbenchApp::new()))),
    )
}

pub struct WorkbenchApp {
    pub status: String,
}

impl Default for WorkbenchApp {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkbenchApp {
    pub fn new() -> Self {
        Self {
            status: "Ready. No model loaded.".to_string(),
        }
    }

    /// The whole window; also used by the headless UI tests.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("title").show(ui, |ui| {
            ui.heading(APP_TITLE);
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.label(format!("Status: {}", self.status));
        });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.label("Training loss");
            Plot::new("loss_plot")
                .legend(Legend::default())
                .x_axis_label("step")
                .y_axis_label("loss (lower is better)")
                .show(ui, |_plot| {});
        });
    }
}

impl eframe::App for WorkbenchApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
