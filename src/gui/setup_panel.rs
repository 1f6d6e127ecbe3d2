//! The setup panel on the left: the model folder and data files (read in the background), the
//! method and its knobs, the device and the runs folder.

use std::path::PathBuf;

use eframe::egui;

use super::actions::Action;
use super::app::WorkbenchApp;
use super::setup;

pub fn show(ui: &mut egui::Ui, app: &mut WorkbenchApp) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.heading("Setup");
    let enabled = !app.is_running();
    ui.add_enabled_ui(enabled, |ui| {
        if ui
            .add_enabled(app.demo.is_some(), egui::Button::new("Use the embedded demo"))
            .on_hover_text("A tiny LLaDA-architecture model that memorised 30 fictitious people; 3 of them form the forget set.")
            .clicked()
        {
            actions.push(Action::UseDemo);
        }
        if app.inputs_are_demo() {
            ui.label("Using the embedded demo (with its retain-only model and utility files).");
        }
        inputs(ui, app);
        ui.separator();
        setup::show_method(ui, &mut app.settings.config);
        ui.separator();
        device_picker(ui, app);
        let runs_label = ui.label("Runs folder");
        let mut root = app.settings.runs_root.display().to_string();
        if ui
            .text_edit_singleline(&mut root)
            .labelled_by(runs_label.id)
            .on_hover_text("Every run writes its folder here (metrics, samples, checkpoints, the final model).")
            .changed()
        {
            actions.push(Action::SetRunsRoot(PathBuf::from(root)));
        }
    });
    actions
}

/// The model folder, forget set and retain set, each with what was read from it.
fn inputs(ui: &mut egui::Ui, app: &mut WorkbenchApp) {
    let recent = app.settings.recent.clone();
    app.checkpoint.show_row(
        ui,
        "An HF checkpoint folder: config.json, *.safetensors, tokenizer files (LLaDA or Dream).",
        app.dialogs.as_ref(),
        &recent,
    );
    setup::show_checkpoint_info(
        ui,
        &app.checkpoint.info,
        &app.settings.config.device,
        app.available_memory,
    );
    app.forget.show_row(
        ui,
        "What to forget: TOFU-format JSON or JSON lines (question, answer, …).",
        app.dialogs.as_ref(),
        &recent,
    );
    setup::show_file_info(ui, "forget_preview", &app.forget.info);
    app.retain.show_row(
        ui,
        "What to keep: TOFU-format JSON or JSON lines.",
        app.dialogs.as_ref(),
        &recent,
    );
    setup::show_file_info(ui, "retain_preview", &app.retain.info);
}

/// The device list (with why CUDA is missing, and a notice when there is no GPU at all).
fn device_picker(ui: &mut egui::Ui, app: &mut WorkbenchApp) {
    if app.devices_job.is_none() {
        if let Some(notice) = setup::gpu_notice(&app.devices, app.cuda_unavailable.as_deref()) {
            ui.label(egui::RichText::new(notice).color(ui.visuals().warn_fg_color));
        }
    }
    let device_label = ui.label("Device");
    let current = app.settings.config.device.clone();
    let shown = app
        .devices
        .iter()
        .find(|(d, _)| *d == current)
        .map_or(current.clone(), |(_, l)| l.clone());
    egui::ComboBox::from_id_salt("device")
        .selected_text(shown)
        .show_ui(ui, |ui| {
            for (d, label) in &app.devices {
                ui.selectable_value(&mut app.settings.config.device, d.clone(), label);
            }
            if let Some(why) = &app.cuda_unavailable {
                ui.add_enabled(false, egui::Label::new(format!("CUDA: unavailable, {why}")));
            }
        })
        .response
        .labelled_by(device_label.id)
        .on_hover_text(match &app.cuda_unavailable {
            None => "Where training runs: CUDA, a wgpu adapter, or the CPU.".to_string(),
            Some(why) => format!(
                "Where training runs: CUDA, a wgpu adapter, or the CPU.\nCUDA is unavailable: {why}."
            ),
        });
}
