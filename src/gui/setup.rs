//! The setup panel's inputs: a model folder and data files, each with an editable path, an
//! "Open…" dialog and what was read from it (on a worker thread), plus the method's knobs.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::dialogs::{Dialogs, PickKind, PickRequest};
use crate::data::{read_qa_file, QaItem};
use crate::session::{ModelInfo, Pending};
use crate::unlearn::config::{
    Checkpointing, LoraSettings, LoraTarget, MomentPrecision, UnlearnConfig,
};

/// What the panel shows about a data file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    /// Every item (the preview shows the first rows; the denoising view picks questions here).
    pub items: Vec<QaItem>,
}

pub fn inspect_file(path: &Path) -> Result<FileInfo, String> {
    let items = read_qa_file(path).map_err(|e| e.to_string())?;
    if items.is_empty() {
        return Err(format!("{}: no question–answer items", path.display()));
    }
    Ok(FileInfo { items })
}

/// How a field's path is read: a request whose answer arrives later (from the engine session
/// for a model folder, from a short-lived thread for a data file).
pub type Reader<T> = Box<dyn Fn(PathBuf) -> Pending<Result<T, String>>>;

/// A data file read on a short-lived thread.
pub fn file_reader() -> Reader<FileInfo> {
    Box::new(|path| Pending::spawn("inspect", move || inspect_file(&path)))
}

/// An input path: typed, picked from a dialog or from the recent list, and read in the background.
pub struct PathField<T> {
    pub label: &'static str,
    pub path: String,
    pub info: Option<Result<T, String>>,
    read: Reader<T>,
    reading: Option<(String, Pending<Result<T, String>>)>,
    dialog: Option<Pending<Option<PathBuf>>>,
    kind: PickKind,
}

impl<T: Send + 'static> PathField<T> {
    pub fn new(label: &'static str, kind: PickKind, read: Reader<T>) -> Self {
        Self {
            label,
            path: String::new(),
            info: None,
            read,
            reading: None,
            dialog: None,
            kind,
        }
    }

    /// Points the field at `path` and reads it in the background.
    pub fn set(&mut self, path: &Path) {
        self.path = path.display().to_string();
        self.refresh();
    }

    fn refresh(&mut self) {
        self.info = None;
        if self.path.trim().is_empty() {
            self.reading = None;
            return;
        }
        let path = PathBuf::from(self.path.trim());
        self.reading = Some((self.path.clone(), (self.read)(path)));
    }

    /// Collects finished reads and dialogs; true while something is pending.
    pub fn poll(&mut self) -> bool {
        if let Some(job) = &mut self.dialog {
            if let Some(answer) = job.poll() {
                self.dialog = None;
                if let Some(p) = answer {
                    self.set(&p);
                }
            }
        }
        if let Some((path, job)) = &mut self.reading {
            if let Some(result) = job.poll() {
                if *path == self.path {
                    self.info = Some(result);
                }
                self.reading = None;
            }
        }
        self.is_pending()
    }

    /// A dialog or a read has not answered yet.
    pub fn is_pending(&self) -> bool {
        self.dialog.is_some() || self.reading.is_some()
    }

    pub fn is_ok(&self) -> bool {
        matches!(self.info, Some(Ok(_)))
    }

    /// Why a run cannot use this input yet (`None` when it was read fine), naming the field.
    pub fn problem(&self) -> Option<String> {
        match &self.info {
            Some(Ok(_)) => None,
            Some(Err(e)) => Some(format!("{}: {e}", self.label)),
            None => Some(format!(
                "{}: choose one first (Open… or type a path).",
                self.label
            )),
        }
    }

    pub fn path_buf(&self) -> PathBuf {
        PathBuf::from(self.path.trim())
    }

    /// The label, the editable path, "Open…" and the recent folders' menu.
    pub fn show_row(
        &mut self,
        ui: &mut egui::Ui,
        hint: &str,
        dialogs: &dyn Dialogs,
        recent: &[PathBuf],
    ) {
        let label = ui.label(egui::RichText::new(self.label).strong());
        ui.horizontal(|ui| {
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.path)
                        .hint_text("type or paste a path")
                        .desired_width(ui.available_width() - 80.0),
                )
                .labelled_by(label.id)
                .on_hover_text(hint);
            if edit.lost_focus() || (edit.changed() && Path::new(self.path.trim()).exists()) {
                self.refresh();
            }
            let open = ui
                .add_enabled(self.dialog.is_none(), egui::Button::new("Open…"))
                .on_hover_text(format!(
                    "{hint}\nOpens the system dialog; if none appears, type the path instead."
                ));
            if open.clicked() {
                let start = Path::new(self.path.trim())
                    .parent()
                    .map(Path::to_path_buf)
                    .or_else(|| recent.first().cloned());
                self.dialog = Some(dialogs.pick(PickRequest {
                    kind: self.kind,
                    title: format!("Open {}", self.label.to_lowercase()),
                    start,
                    filters: if self.kind == PickKind::File {
                        vec![(
                            "TOFU question–answer files".into(),
                            vec!["json".into(), "jsonl".into()],
                        )]
                    } else {
                        vec![]
                    },
                    file_name: None,
                }));
            }
            if !recent.is_empty() {
                ui.menu_button("⏷", |ui| {
                    for r in recent {
                        let folder = if self.kind == PickKind::Folder {
                            r.clone()
                        } else {
                            r.parent().map(Path::to_path_buf).unwrap_or_default()
                        };
                        if ui.button(folder.display().to_string()).clicked() {
                            if self.kind == PickKind::Folder {
                                self.set(&folder);
                            } else {
                                self.path = format!("{}/", folder.display());
                            }
                            ui.close();
                        }
                    }
                })
                .response
                .on_hover_text("Recent folders");
            }
        });
        if self.reading.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("reading…");
            });
        }
    }
}

/// `available`: free memory of the chosen device when known (read by the window on a worker).
pub fn show_checkpoint_info(
    ui: &mut egui::Ui,
    info: &Option<Result<ModelInfo, String>>,
    device: &str,
    available: Option<u64>,
) {
    match info {
        Some(Ok(i)) => {
            ui.label(format!(
                "{} · {} parameters · {} · vocab {}",
                i.architecture,
                human_count(i.parameters),
                i.dtype,
                i.vocab
            ));
            let fits = available.map(|a| a >= i.bytes_f32);
            let text = format!(
                "needs ≈ {} in f32 on {device}{}",
                human_bytes(i.bytes_f32),
                match (fits, available) {
                    (Some(true), Some(a)) => format!(" ({} free)", human_bytes(a)),
                    (Some(false), Some(a)) => {
                        format!(" — only {} free: will not fit", human_bytes(a))
                    }
                    _ => String::new(),
                }
            );
            if fits == Some(false) {
                ui.colored_label(ui.visuals().error_fg_color, text);
            } else {
                ui.label(text);
            }
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        None => {}
    }
}

pub fn show_file_info(ui: &mut egui::Ui, id: &str, info: &Option<Result<FileInfo, String>>) {
    match info {
        Some(Ok(i)) => {
            egui::CollapsingHeader::new(format!("{} items — preview", i.items.len()))
                .id_salt(id)
                .show(ui, |ui| {
                    for it in i.items.iter().take(3) {
                        ui.label(egui::RichText::new(&it.question).italics());
                        ui.label(format!("A: {}", it.answer));
                    }
                });
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        None => {}
    }
}

/// Full fine-tuning or LoRA adapters on a frozen base, with the adapters' rank, α and targets.
pub fn show_lora(ui: &mut egui::Ui, config: &mut UnlearnConfig) {
    let mut on = config.lora.is_some();
    ui.checkbox(&mut on, "LoRA adapters (base frozen)")
        .on_hover_text(
        "Train small low-rank adapters instead of every weight: a fraction of the memory, and the \
         frozen base serves as MDU's anchor without a second copy. The run saves a PEFT adapter; \
         Save model as… writes the merged model.",
    );
    match (on, config.lora.is_some()) {
        (true, false) => config.lora = Some(LoraSettings::default()),
        (false, true) => config.lora = None,
        _ => {}
    }
    let Some(lora) = &mut config.lora else {
        return;
    };
    ui.horizontal(|ui| {
        drag_usize(
            ui,
            "Rank",
            &mut lora.rank,
            1..=512,
            "r: the adapters' inner size. Higher fits more, costs more memory.",
        );
        let alpha_label = ui.label("α");
        ui.add(
            egui::DragValue::new(&mut lora.alpha)
                .range(0.01..=4096.0)
                .speed(0.5),
        )
        .labelled_by(alpha_label.id)
        .on_hover_text("The adapters' output is scaled by α / r.");
    });
    ui.horizontal_wrapped(|ui| {
        ui.label("On:");
        for target in LoraTarget::ALL {
            let mut chosen = lora.targets.contains(&target);
            if ui.checkbox(&mut chosen, target.name()).changed() {
                lora.targets.retain(|t| *t != target);
                if chosen {
                    lora.targets.push(target);
                    lora.targets.sort();
                }
            }
        }
    });
    if let Err(problem) = lora.validate() {
        ui.colored_label(ui.visuals().warn_fg_color, problem);
    }
}

/// Per-block activation checkpointing: auto, on or off.
pub fn show_checkpointing(ui: &mut egui::Ui, config: &mut UnlearnConfig) {
    ui.horizontal(|ui| {
        ui.label("Activation checkpointing").on_hover_text(
            "Keep only each block's input and run the block again in the backward pass: far \
                 less memory for long sequences and big batches, about one more forward pass of \
                 time.",
        );
        for (value, name, tip) in [
            (
                Checkpointing::Auto,
                "Auto",
                "On only when a step would not fit in the device's free memory without it.",
            ),
            (Checkpointing::On, "On", "Always (not with LoRA dropout)."),
            (Checkpointing::Off, "Off", "Never: the fastest step."),
        ] {
            ui.selectable_value(&mut config.checkpointing, value, name)
                .on_hover_text(tip);
        }
    });
    if let Some(problem) = config.checkpointing_conflict() {
        ui.colored_label(ui.visuals().warn_fg_color, problem);
    }
}

/// What AdamW keeps its moments in: f32 or bf16.
pub fn show_moments(ui: &mut egui::Ui, config: &mut UnlearnConfig) {
    ui.horizontal(|ui| {
        ui.label("Optimiser moments").on_hover_text(
            "What AdamW keeps its two running averages per trained weight in. bf16 halves their \
                 memory (8 → 4 bytes per weight) on a device that stores bf16 (CUDA), rounded \
                 stochastically so they stay right on average; elsewhere the values are bf16 \
                 but no memory is saved.",
        );
        for (value, name, tip) in [
            (
                MomentPrecision::F32,
                "f32",
                "8 bytes per trained weight (the default).",
            ),
            (
                MomentPrecision::Bf16,
                "bf16",
                "4 bytes per trained weight where the device stores bf16; for full fine-tuning \
                     of large models.",
            ),
        ] {
            ui.selectable_value(&mut config.moments, value, name)
                .on_hover_text(tip);
        }
    });
}

pub fn labelled_slider(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut f64,
    range: std::ops::RangeInclusive<f64>,
    tip: &str,
) {
    let l = ui.label(label).on_hover_text(tip);
    ui.add(egui::Slider::new(value, range))
        .labelled_by(l.id)
        .on_hover_text(tip);
}

pub fn drag_usize(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut usize,
    range: std::ops::RangeInclusive<usize>,
    tip: &str,
) {
    let l = ui.label(label);
    ui.add(egui::DragValue::new(value).range(range))
        .labelled_by(l.id)
        .on_hover_text(tip);
}

pub fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", n / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:.0} MiB", (n / (1024.0 * 1024.0)).max(1.0))
    }
}

/// What the window says when this machine offers no graphics card a run can use (only the CPU, or
/// only a software Vulkan driver), in words for someone who does not program: what is missing, and
/// that runs use the processor. `devices` are the picker's (id, label) pairs; `cuda_unavailable` is
/// the CUDA probe's reason. `None` when a GPU is there.
pub fn gpu_notice(devices: &[(String, String)], cuda_unavailable: Option<&str>) -> Option<String> {
    let hardware =
        |id: &str| id.starts_with("cuda") || (id.starts_with("wgpu:") && id != "wgpu:cpu");
    if devices.iter().any(|(id, _)| hardware(id)) {
        return None;
    }
    let nvidia = match cuda_unavailable {
        Some(why) if why.contains("no NVIDIA driver library") => {
            "No NVIDIA driver is installed.".to_string()
        }
        Some(why) if why.contains("NVRTC") => {
            "The NVIDIA driver is there, but the CUDA toolkit's compiler (NVRTC) is missing: install the CUDA toolkit.".to_string()
        }
        Some(why) if why.contains("headers") || why.contains("no CUDA installation") => {
            "The NVIDIA driver is there, but the CUDA toolkit is missing or incomplete: install the CUDA toolkit.".to_string()
        }
        Some(why) if why.contains("no CUDA support") => {
            "This copy of the workbench was built without NVIDIA support.".to_string()
        }
        Some(why) => format!("NVIDIA cards cannot be used: {why}."),
        None => String::new(),
    };
    let vulkan = if devices.iter().any(|(id, _)| id == "wgpu:cpu") {
        "Only the software Vulkan driver is installed: it works, but more slowly than the processor path."
    } else {
        "No Vulkan driver is installed (other graphics cards need one: on Debian or Ubuntu, the package mesa-vulkan-drivers or your card's driver)."
    };
    Some(format!(
        "No graphics card found: runs use the processor (CPU). The demo runs well on it; models of \
         billions of parameters need an NVIDIA card. {nvidia} {vulkan}"
    ))
}
