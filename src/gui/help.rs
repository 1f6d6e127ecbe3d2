//! The Help tab: where the models and data the presets expect come from, and how to lay them out.
//! The same text as README's "Get models and data".

use eframe::egui;

use crate::unlearn::presets::{PRESETS, TOFU_REPO};

pub fn show_tab(ui: &mut egui::Ui) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading("Get models and data");
        ui.label(
            "The workbench never downloads anything. The paper presets expect two folders under \
             one folder of your choice (the setup panel's \"Models and data folder\"): models/ \
             with the model checkpoints and data/tofu/ with the TOFU question–answer files. All \
             are published on the Hugging Face hub; its command-line tool fetches them (pip \
             install -U huggingface_hub, then run these commands in that folder):",
        );
        // One command per model the presets name, into the folder they expect it in.
        let mut commands = String::new();
        let mut models: Vec<&str> = Vec::new();
        for preset in PRESETS {
            let (Some(repo), Some(folder)) = (preset.model_repo, preset.expects().first()) else {
                continue;
            };
            if !models.contains(&repo) {
                models.push(repo);
                commands.push_str(&format!(
                    "huggingface-cli download {repo} --local-dir {}\n",
                    folder.display()
                ));
            }
        }
        commands.push_str(&format!(
            "huggingface-cli download {TOFU_REPO} --repo-type dataset --local-dir data/tofu\n"
        ));
        ui.add(
            egui::TextEdit::multiline(&mut commands.as_str())
                .code_editor()
                .desired_rows(3),
        );
        ui.label("Each model is about 16 GB in bf16. The layout the presets expect:");
        let mut layout = "models/LLaDA-8B-Instruct/        config.json, *.safetensors, tokenizer files\n\
                          models/Dream-v0-Instruct-7B/     (the same)\n\
                          data/tofu/forget10.json          what to forget (forget05, forget01 for the smaller splits)\n\
                          data/tofu/retain_perturbed.json  what to keep, and the retain evaluation\n\
                          data/tofu/real_authors_perturbed.json, data/tofu/world_facts_perturbed.json   utility";
        ui.add(egui::TextEdit::multiline(&mut layout).code_editor());
        ui.label(
            "Some revisions of the TOFU dataset name the plain splits forget10_dataset.json \
             (and so on): rename them, or point the Forget field at the file. \
             forget10_perturbed.json also works as a forget file.",
        );
        ui.label(
            "The paper unlearns models that were first fine-tuned on all of TOFU; those \
             fine-tuned checkpoints are not published, so a run on the instruct models above \
             unlearns facts they never learned. For numbers comparable with the paper's, \
             fine-tune on all of TOFU first (mdu finetune trains demo-sized models only).",
        );
        ui.heading("How long a paper run takes");
        ui.label(
            "Not measured yet on any GPU. Before Start, the setup panel shows what one step needs \
             in memory on the chosen device, and Estimate time measures a short probe of the run \
             there and scales it to the whole run (mdu unlearn --estimate-time does the same).",
        );
    });
}
