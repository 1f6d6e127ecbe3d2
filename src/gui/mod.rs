//! The workbench window (eframe + egui + egui_plot). It opens on the embedded demo and never
//! holds a tensor: the engine session owns the models and runs; the window sends it commands and
//! draws the plain events and results that come back. Each frame collects what arrived, draws the
//! panels, and applies the actions they returned.
//!
//! - [`app`]: the window's state and frame; [`settings`]: what survives a restart;
//!   [`actions`]: what panels ask for; [`run_control`]: start, stop, queue, save, export;
//!   [`jobs`]: the work in flight they poll.
//! - Panels, one file each: [`run_bar`], [`setup_panel`] (with [`setup`]'s fields), [`curves`]
//!   (with [`plots`] and [`series`]), [`tradeoff`], [`samples`], [`denoise`], [`history`], [`modals`].

pub mod actions;
pub mod advanced;
pub mod app;
pub mod config_files;
pub mod cost_estimate;
pub mod curves;
pub mod denoise;
pub mod dialogs;
pub mod help;
pub mod history;
pub mod inside;
pub mod jobs;
pub mod method;
pub mod modals;
pub mod plots;
pub mod privacy;
pub mod run_bar;
pub mod run_control;
pub mod samples;
pub mod series;
pub mod settings;
pub mod setup;
pub mod setup_panel;
pub mod tradeoff;

use eframe::egui;

pub use app::{WorkbenchApp, DIALOG_UNAVAILABLE};
pub use settings::Settings;

pub const APP_TITLE: &str = "MDU Workbench";

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
            let settings = Settings::load(cc.storage);
            Ok(Box::new(WorkbenchApp::new(
                settings,
                Box::new(dialogs::NativeDialogs),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Curves,
    Tradeoff,
    Samples,
    Denoising,
    Inside,
    Privacy,
    History,
    Help,
}

impl Tab {
    const ALL: [(Tab, &'static str); 8] = [
        (Tab::Curves, "Curves"),
        (Tab::Tradeoff, "τ trade-off"),
        (Tab::Samples, "Samples"),
        (Tab::Denoising, "Denoising"),
        (Tab::Inside, "Inside"),
        (Tab::Privacy, "Privacy"),
        (Tab::History, "History"),
        (Tab::Help, "Help"),
    ];
}
