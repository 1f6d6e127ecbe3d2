//! The setup panel's "Advanced" fold: everything a run config holds beyond the first screen —
//! optimiser schedule, evaluation files and protocol, checkpoints and early stop.

use std::path::PathBuf;

use eframe::egui;

use super::setup::drag_usize;
use crate::eval::report::Generation;
use crate::unlearn::config::{LrShape, UnlearnConfig};

pub fn show(ui: &mut egui::Ui, config: &mut UnlearnConfig) {
    egui::CollapsingHeader::new("Advanced")
        .id_salt("advanced")
        .show(ui, |ui| {
            training(ui, config);
            ui.separator();
            evaluation(ui, config);
            ui.separator();
            files(ui, config);
            ui.separator();
            checkpoints(ui, config);
        });
}

fn training(ui: &mut egui::Ui, c: &mut UnlearnConfig) {
    drag_usize(
        ui,
        "Gradient accumulation",
        &mut c.grad_accum,
        1..=1024,
        "Micro-batches summed per optimiser step: the effective batch is batch × this.",
    );
    drag_usize(
        ui,
        "Warm-up steps",
        &mut c.warmup_steps,
        0..=100_000,
        "The learning rate rises linearly from 0 over these steps.",
    );
    ui.horizontal(|ui| {
        ui.label("After warm-up");
        for (shape, name, tip) in [
            (LrShape::Constant, "Constant", "The learning rate holds."),
            (
                LrShape::Linear,
                "Linear",
                "Decays linearly to 0 (HF Trainer's default).",
            ),
            (
                LrShape::Cosine,
                "Cosine",
                "Decays along a half cosine to 0.",
            ),
        ] {
            ui.selectable_value(&mut c.lr_schedule, shape, name)
                .on_hover_text(tip);
        }
    });
    let clip = ui.label("Gradient clipping (global norm, 0 = off)");
    ui.add(
        egui::DragValue::new(&mut c.max_grad_norm)
            .range(0.0..=100.0)
            .speed(0.05),
    )
    .labelled_by(clip.id);
    let decay = ui.label("Weight decay");
    ui.add(
        egui::DragValue::new(&mut c.weight_decay)
            .range(0.0..=1.0)
            .speed(0.001),
    )
    .labelled_by(decay.id);
}

fn evaluation(ui: &mut egui::Ui, c: &mut UnlearnConfig) {
    ui.horizontal(|ui| {
        ui.label("Generation").on_hover_text(
            "How answers are generated for ROUGE-L. Demo: a slot as long as the longest gold \
             answer, one step per token. Paper: 128 new tokens (LLaDA 256 steps in one block, \
             Dream 128 steps), as the MDU paper evaluates.",
        );
        let demo = matches!(c.generation, Generation::Demo { .. });
        if ui.selectable_label(demo, "Demo").clicked() && !demo {
            c.generation = Generation::Demo { margin: 4 };
        }
        if ui.selectable_label(!demo, "Paper").clicked() {
            c.generation = Generation::Paper;
        }
        if let Generation::Demo { margin } = &mut c.generation {
            let l = ui.label("extra tokens");
            ui.add(egui::DragValue::new(margin).range(0..=256))
                .labelled_by(l.id);
        }
    });
    drag_usize(
        ui,
        "Monte-Carlo samples (full evaluation)",
        &mut c.eval_mc_samples,
        1..=1024,
        "Maskings per answer for every probability; the paper uses 128.",
    );
    ui.checkbox(&mut c.eval_before, "Evaluate before training");
    ui.checkbox(&mut c.eval_after, "Evaluate after training");
    ui.checkbox(
        &mut c.eval_tofu,
        "TOFU numbers too (truth ratio, utility, forget quality)",
    );
    ui.checkbox(&mut c.leakage_probe, "Leakage probe after training")
        .on_hover_text(
            "Tries to get each forget answer back along other decoding paths (random order, \
             blocks, temperature sampling, a retain item as context, a leading prefix, the \
             paraphrased question where the data has one) and reports the worst case: the \
             \"worst path\" column of the samples. About eight more generations per forget item.",
        );
    ui.checkbox(&mut c.live_role_kl, "KL per token role at live evaluations")
        .on_hover_text(
            "Traces the live forget items and plots the mean KL to the target per token role \
             (stored-knowledge, in-context, structural) in the Inside view.",
        );
    let mut limited = c.eval_max_items.is_some();
    ui.horizontal(|ui| {
        ui.checkbox(&mut limited, "Score at most");
        let mut n = c.eval_max_items.unwrap_or(100);
        ui.add_enabled(limited, egui::DragValue::new(&mut n).range(1..=100_000));
        ui.label("items per split");
        c.eval_max_items = limited.then_some(n);
    });
    drag_usize(
        ui,
        "Live evaluation every (steps, 0 = never)",
        &mut c.live_every,
        0..=100_000,
        "A quick forget / retain ROUGE-L during training, drawn on the curves.",
    );
    drag_usize(
        ui,
        "Live items",
        &mut c.live_items,
        1..=10_000,
        "Items of each split the live evaluation scores.",
    );
    drag_usize(
        ui,
        "Live Monte-Carlo samples",
        &mut c.live_mc_samples,
        1..=1024,
        "Maskings per answer in the live evaluation.",
    );
}

fn files(ui: &mut egui::Ui, c: &mut UnlearnConfig) {
    let label = ui.label("Utility files (one path per line)").on_hover_text(
        "Extra evaluation files: TOFU's real_authors_perturbed.json and \
         world_facts_perturbed.json give model utility.",
    );
    let mut text = c
        .eval_files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    if ui
        .add(egui::TextEdit::multiline(&mut text).desired_rows(2))
        .labelled_by(label.id)
        .changed()
    {
        c.eval_files = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    optional_path(
        ui,
        "Retain evaluation file",
        &mut c.eval_retain,
        "TOFU's retain_perturbed.json; empty: the first items of the retain file.",
    );
    optional_path(
        ui,
        "Retain-only model",
        &mut c.retain_model,
        "A model fine-tuned without the forget set, for TOFU's forget quality and the privacy audit's privleak; empty: none.",
    );
    optional_path(
        ui,
        "Holdout file",
        &mut c.holdout,
        "Items of the same kind the model never saw (TOFU's holdout10.json): turns on the privacy audit (Privacy tab); empty: none (the demo uses its own).",
    );
    ui.checkbox(&mut c.privacy_audit, "Privacy audit before and after")
        .on_hover_text("Membership inference on forget against holdout, privleak, extraction strength and exact memorisation. Needs a holdout file.");
}

fn checkpoints(ui: &mut egui::Ui, c: &mut UnlearnConfig) {
    drag_usize(
        ui,
        "Checkpoint every (steps, 0 = only the final model)",
        &mut c.save_every,
        0..=100_000,
        "A stopped or crashed run resumes from its newest checkpoint.",
    );
    drag_usize(
        ui,
        "Checkpoints kept (0 = all)",
        &mut c.keep_checkpoints,
        0..=1000,
        "The newest this many, plus the best one.",
    );
    let mut stop = c.stop_at_forget_rouge.is_some();
    ui.horizontal(|ui| {
        ui.checkbox(&mut stop, "Stop early at forget ROUGE-L ≤")
            .on_hover_text("Ends the run once the live forget ROUGE-L recall reaches this.");
        let mut v = c.stop_at_forget_rouge.unwrap_or(0.1);
        ui.add_enabled(
            stop,
            egui::DragValue::new(&mut v).range(0.0..=1.0).speed(0.01),
        );
        c.stop_at_forget_rouge = stop.then_some(v);
    });
}

/// A path that may be empty (`None`).
fn optional_path(ui: &mut egui::Ui, label: &str, value: &mut Option<PathBuf>, tip: &str) {
    let l = ui.label(label).on_hover_text(tip);
    let mut text = value
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if ui
        .add(egui::TextEdit::singleline(&mut text).hint_text("none"))
        .labelled_by(l.id)
        .on_hover_text(tip)
        .changed()
    {
        let t = text.trim();
        *value = (!t.is_empty()).then(|| PathBuf::from(t));
    }
}
