//! The window skeleton, driven headless through egui_kittest by accessible labels.

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use mdu_workbench::gui::{WorkbenchApp, APP_TITLE};

#[test]
fn window_shows_title_plot_and_status() {
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut WorkbenchApp| app.show(ui),
        WorkbenchApp::new(),
    );
    harness.run();
    harness.get_by_label(APP_TITLE);
    harness.get_by_label("Training loss");
    harness.get_by_label("Status: Ready. No model loaded.");
    harness.state_mut().status = "Loading".into();
    harness.run();
    harness.get_by_label("Status: Loading");
}
