//! The setup panel on the left: the model folder and data files (read in the background), the
//! method and its knobs, the device and the runs folder.

use std::path::PathBuf;

use eframe::egui;

use super::actions::Action;
use super::cost_estimate::CostLine;
use super::dialogs::Dialogs;
use super::settings::Settings;
use super::setup::{self, FileInfo, PathField};
use crate::session::{DeviceMemory, ModelInfo};
use crate::unlearn::memory_plan::PlanInputs;
use crate::unlearn::presets::{PRESETS, TOFU_REPO};

/// What the panel edits and shows.
pub struct SetupInput<'a> {
    pub checkpoint: &'a mut PathField<ModelInfo>,
    pub forget: &'a mut PathField<FileInfo>,
    pub retain: &'a mut PathField<FileInfo>,
    pub settings: &'a mut Settings,
    pub dialogs: &'a dyn Dialogs,
    pub running: bool,
    /// The demo is unpacked (its button works).
    pub demo_ready: bool,
    /// The three inputs are the demo's.
    pub using_demo: bool,
    /// (value for `--device`, label)
    pub devices: &'a [(String, String)],
    pub cuda_unavailable: Option<&'a str>,
    /// The device probe has answered.
    pub devices_listed: bool,
    /// Free memory and storage type of the chosen device, when known.
    pub device_memory: Option<DeviceMemory>,
    /// The longest training item in tokens (the widest batch), once the engine has read the files.
    pub longest_item: Option<usize>,
    /// What the time estimate says about the setup as it is.
    pub cost: CostLine,
}

pub fn show(ui: &mut egui::Ui, app: SetupInput) -> Vec<Action> {
    let mut app = app;
    let mut actions = Vec::new();
    ui.heading("Setup");
    let enabled = !app.running;
    ui.add_enabled_ui(enabled, |ui| {
        if ui
            .add_enabled(app.demo_ready, egui::Button::new("Use the embedded demo"))
            .on_hover_text("A tiny LLaDA-architecture model that memorised 30 fictitious people; 3 of them form the forget set.")
            .clicked()
        {
            actions.push(Action::UseDemo);
        }
        if app.using_demo {
            ui.label("Using the embedded demo (with its retain-only model and utility files).");
        }
        presets(ui, &mut app, &mut actions);
        inputs(ui, &mut app);
        ui.separator();
        super::method::show_method(ui, &mut app.settings.config);
        setup::show_lora(ui, &mut app.settings.config);
        super::advanced::show(ui, &mut app.settings.config);
        ui.separator();
        device_picker(ui, &mut app);
        setup::show_checkpointing(ui, &mut app.settings.config);
        setup::show_moments(ui, &mut app.settings.config);
        memory_plan(ui, &mut app);
        cost_line(ui, &app.cost, &mut actions);
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

/// The run's time: the estimate for the setup as it is, or a button that measures one.
fn cost_line(ui: &mut egui::Ui, cost: &CostLine, actions: &mut Vec<Action>) {
    match cost {
        CostLine::Unknown => {
            if ui
                .button("Estimate time")
                .on_hover_text("Runs a short probe (a few steps, two items per split) on the chosen device and scales it to the whole run.")
                .clicked()
            {
                actions.push(Action::EstimateCost);
            }
        }
        CostLine::Measuring => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Estimating the time (a short probe run)…");
            });
        }
        CostLine::Estimate { text, warning } => {
            ui.label(format!("Time {text}"));
            if let Some(w) = warning {
                ui.colored_label(ui.visuals().warn_fg_color, w);
            }
        }
        CostLine::Failed(why) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("No time estimate: {why}"));
        }
    }
}

/// The preset picker, where the paper presets look for their files, and Open / Save config.
fn presets(ui: &mut egui::Ui, app: &mut SetupInput, actions: &mut Vec<Action>) {
    let chosen = app.settings.preset.and_then(|i| PRESETS.get(i));
    let preset_label = ui.label("Preset");
    egui::ComboBox::from_id_salt("preset")
        .selected_text(chosen.map_or(
            if app.using_demo {
                "Embedded demo"
            } else {
                "Choose a preset…"
            },
            |p| p.label,
        ))
        .show_ui(ui, |ui| {
            for (i, p) in PRESETS.iter().enumerate() {
                let tip = match p.file_name() {
                    Some(file) => format!(
                        "Every knob as configs/{file} sets it, paths under the folder below."
                    ),
                    None => "The embedded demo and the settings tuned for it.".to_string(),
                };
                if ui
                    .selectable_label(app.settings.preset == Some(i), p.label)
                    .on_hover_text(tip)
                    .clicked()
                {
                    actions.push(Action::ApplyPreset(i));
                }
            }
        })
        .response
        .labelled_by(preset_label.id);
    if let Some(p) = chosen.filter(|p| p.file_name().is_some()) {
        let root_label = ui.label("Models and data folder");
        ui.horizontal(|ui| {
            let mut root = app.settings.data_root.display().to_string();
            if ui
                .add(egui::TextEdit::singleline(&mut root).desired_width(ui.available_width() - 80.0))
                .labelled_by(root_label.id)
                .on_hover_text("The folder holding models/ and data/tofu/; the preset's paths are placed under it.")
                .lost_focus()
                && PathBuf::from(root.trim()) != app.settings.data_root
            {
                app.settings.data_root = PathBuf::from(root.trim());
                if let Some(i) = app.settings.preset {
                    actions.push(Action::ApplyPreset(i));
                }
            }
            if ui.button("Open…").clicked() {
                actions.push(Action::BrowseDataRoot);
            }
        });
        let expects: Vec<String> = p
            .expects()
            .iter()
            .map(|e| e.display().to_string())
            .collect();
        ui.label(
            egui::RichText::new(format!(
                "Expects {} there: the model from the Hugging Face hub ({}), the files from the dataset {TOFU_REPO}. Help → Get models and data says how.",
                expects.join(", "),
                p.model_repo.unwrap_or("?"),
            ))
            .small(),
        );
    }
    ui.horizontal(|ui| {
        if ui
            .button("Open config…")
            .on_hover_text("Read a run config (TOML, as mdu unlearn --config reads it).")
            .clicked()
        {
            actions.push(Action::OpenConfig);
        }
        if ui
            .button("Save config…")
            .on_hover_text("Write this setup as a run config (TOML) for mdu unlearn --config or a later Open config….")
            .clicked()
        {
            actions.push(Action::SaveConfig);
        }
    });
}

/// The model folder, forget set and retain set, each with what was read from it.
fn inputs(ui: &mut egui::Ui, app: &mut SetupInput) {
    let recent = app.settings.recent.clone();
    app.checkpoint.show_row(
        ui,
        "An HF checkpoint folder: config.json, *.safetensors, tokenizer files (LLaDA or Dream).",
        app.dialogs,
        &recent,
    );
    setup::show_checkpoint_info(
        ui,
        &app.checkpoint.info,
        &app.settings.config.device,
        app.device_memory.and_then(|m| m.available),
    );
    app.forget.show_row(
        ui,
        "What to forget: TOFU-format JSON or JSON lines (question, answer, …).",
        app.dialogs,
        &recent,
    );
    setup::show_file_info(ui, "forget_preview", &app.forget.info);
    app.retain.show_row(
        ui,
        "What to keep: TOFU-format JSON or JSON lines.",
        app.dialogs,
        &recent,
    );
    setup::show_file_info(ui, "retain_preview", &app.retain.info);
}

/// The device list (with why CUDA is missing, and a notice when there is no GPU at all).
fn device_picker(ui: &mut egui::Ui, app: &mut SetupInput) {
    if app.devices_listed {
        if let Some(notice) = setup::gpu_notice(app.devices, app.cuda_unavailable) {
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
            for (d, label) in app.devices {
                ui.selectable_value(&mut app.settings.config.device, d.clone(), label);
            }
            if let Some(why) = app.cuda_unavailable {
                ui.add_enabled(false, egui::Label::new(format!("CUDA: unavailable, {why}")));
            }
        })
        .response
        .labelled_by(device_label.id)
        .on_hover_text(match app.cuda_unavailable {
            None => "Where training runs: CUDA, a wgpu adapter, or the CPU.".to_string(),
            Some(why) => format!(
                "Where training runs: CUDA, a wgpu adapter, or the CPU.\nCUDA is unavailable: {why}."
            ),
        });
}

/// "Fits / does not fit": the memory plan of one step of the run as set up, against the chosen
/// device's free memory, each part on hover; when it does not fit, LoRA is offered.
fn memory_plan(ui: &mut egui::Ui, app: &mut SetupInput) {
    let (Some(Ok(info)), Some(width), Some(device)) =
        (&app.checkpoint.info, app.longest_item, app.device_memory)
    else {
        return;
    };
    let config = &app.settings.config;
    let (checkpointing, plan) = PlanInputs::for_run(
        config,
        &info.shape,
        width,
        device.storage_bytes,
        device.bf16_storage,
        device.on_cpu,
    )
    .resolve(config.checkpointing, device.available);
    let need = format!(
        "{}{}",
        setup::human_bytes(plan.total()),
        if checkpointing {
            " with checkpointing"
        } else {
            ""
        }
    );
    let fits = device.available.map(|a| plan.total() <= a);
    let text = match (fits, device.available) {
        (Some(true), Some(a)) => format!(
            "One training step needs ≈ {need}; {} free: fits",
            setup::human_bytes(a)
        ),
        (Some(false), Some(a)) => format!(
            "One training step needs ≈ {need}; only {} free: does not fit",
            setup::human_bytes(a)
        ),
        _ => format!("One training step needs ≈ {need}"),
    };
    let response = if fits == Some(false) {
        ui.colored_label(ui.visuals().error_fg_color, text)
    } else {
        ui.label(text)
    };
    response.on_hover_text(format!(
        "{} ({} tokens per row, batch {}).",
        plan.describe(),
        width,
        config.batch_size
    ));
    if fits == Some(false)
        && config.lora.is_none()
        && ui
            .button("Use LoRA")
            .on_hover_text("Train rank-16 adapters on the frozen model instead of every weight.")
            .clicked()
    {
        app.settings.config.lora = Some(Default::default());
    }
}
