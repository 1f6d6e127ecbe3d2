//! The window's questions: stop the run?, an error to acknowledge, and where to save the model.
//! Each answer is an [`Action`].

use eframe::egui;

use super::actions::Action;

/// What the modals ask about.
pub struct ModalsInput<'a> {
    pub confirm_stop: bool,
    /// The oldest error not yet acknowledged.
    pub error: Option<&'a str>,
    /// The Save model as… destination, editable, while the prompt is open.
    pub save_prompt: &'a mut Option<String>,
    /// The system dialog behind Browse… is open.
    pub browsing: bool,
}

/// The one modal on screen (stop question first, then errors, then the save prompt).
pub fn show(ctx: &egui::Context, input: ModalsInput) -> Vec<Action> {
    if input.confirm_stop {
        confirm_stop(ctx)
    } else if let Some(error) = input.error {
        let modal = egui::Modal::new(egui::Id::new("error")).show(ctx, |ui| {
            ui.heading("Something went wrong");
            ui.label(error);
            ui.button("OK").clicked()
        });
        if modal.inner || modal.should_close() {
            vec![Action::DismissError]
        } else {
            Vec::new()
        }
    } else if input.save_prompt.is_some() {
        save_prompt(ctx, input.save_prompt, input.browsing)
    } else {
        Vec::new()
    }
}

fn confirm_stop(ctx: &egui::Context) -> Vec<Action> {
    let modal = egui::Modal::new(egui::Id::new("confirm_stop")).show(ctx, |ui| {
        ui.heading("Stop the run?");
        ui.label("Training stops within about a second. The run folder stays complete up to the last step and can be resumed with `mdu unlearn --resume`.");
        let mut choice = None;
        ui.horizontal(|ui| {
            if ui.button("Stop run").clicked() {
                choice = Some(Action::Stop);
            }
            if ui.button("Keep running").clicked() {
                choice = Some(Action::KeepRunning);
            }
        });
        choice
    });
    match modal.inner {
        Some(action) => vec![action],
        None if modal.should_close() => vec![Action::KeepRunning],
        None => Vec::new(),
    }
}

/// The destination folder, editable, with Browse…, Save and Cancel.
fn save_prompt(ctx: &egui::Context, prompt: &mut Option<String>, browsing: bool) -> Vec<Action> {
    let modal = egui::Modal::new(egui::Id::new("save_model")).show(ctx, |ui| {
        ui.heading("Save the unlearned model");
        ui.label("A new folder in the Hugging Face layout (config, safetensors, tokenizer). It must not exist yet; the run folder is left as it is.");
        let mut choice = None;
        if let Some(dest) = prompt.as_mut() {
            ui.horizontal(|ui| {
                let l = ui.label("Destination folder");
                ui.add(egui::TextEdit::singleline(dest).desired_width(420.0))
                    .labelled_by(l.id);
            });
        }
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!browsing, egui::Button::new("Browse…"))
                .on_hover_text("Pick the folder with the system dialog (needs a desktop portal on Linux).")
                .clicked()
            {
                choice = Some(Action::BrowseSaveDestination);
            }
            if ui.button("Save").clicked() {
                choice = Some(Action::SaveTo(prompt.clone().unwrap_or_default()));
            }
            if ui.button("Cancel").clicked() {
                choice = Some(Action::CancelSave);
            }
        });
        choice
    });
    match modal.inner {
        Some(action) => vec![action],
        None if modal.should_close() && !browsing => vec![Action::CancelSave],
        None => Vec::new(),
    }
}
