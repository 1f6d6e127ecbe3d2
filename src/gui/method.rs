//! The method picker: each method with what it does and its formula as a tooltip, the parameters
//! of the chosen one, and the training budget (learning rate, steps, batch, seed).

use eframe::egui;

use super::setup::{drag_usize, labelled_slider};
use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::{KlDirection, Method};

/// What each method does, with its objective, as its tooltip in the picker.
fn description(m: Method) -> &'static str {
    match m {
        Method::Mdu => "Masked Diffusion Unlearning: pull the model's answer distribution on forget items toward a target built from the model without the question (τ), keep retain with the diffusion loss (α).\nKL(p_θ ‖ softmax(τ·z_u)) + α·NLL(retain)",
        Method::Ga => "Gradient ascent: raise the diffusion loss on forget items. Forgets fast, usually destroys everything else.\n−NLL(forget)",
        Method::GradDiff => "GradDiff: gradient ascent on forget plus the usual loss on retain (weights γ and α).\n−γ·NLL(forget) + α·NLL(retain)",
        Method::Npo => "Negative Preference Optimisation: push forget likelihood below a frozen reference, bounded by β; retain loss weighted α.\n−(2/β)·log σ(β·(NLL_θ − NLL_θ₀)) per answer",
        Method::SimNpo => "SimNPO: NPO without the frozen reference, on the NLL per answer token, with a margin δ. open-unlearning uses β 4.5, γ 0.125.\n−(2/β)·log σ(β·(NLL_θ/|y| − δ)) per answer",
        Method::Wga => "Weighted gradient ascent: each token's ascent weighted by the model's own probability of it (to the power β), so tokens already forgotten stop pushing.\n−Σ p_θ(x)^β·CE / #tokens",
        Method::Undial => "UNDIAL: distil the frozen model into itself with the true token's logit lowered by β, so its probability spreads over the alternatives. open-unlearning uses β 10, α 0.\nCE(p_θ, softmax(z₀ − β·onehot(x)))",
        Method::Rmu => "RMU: push one block's output on forget items toward a fixed random direction of length c, and keep it on retain items where the frozen model has it.\n‖h_ℓ − c·u‖² on forget + α·‖h_ℓ − h_ℓ(θ₀)‖² on retain",
    }
}

/// The method, its parameters and the training budget.
pub fn show_method(ui: &mut egui::Ui, config: &mut UnlearnConfig) {
    let method_label = ui.label(egui::RichText::new("Method").strong());
    egui::ComboBox::from_id_salt("method")
        .selected_text(config.method.label())
        .show_ui(ui, |ui| {
            for m in Method::ALL {
                ui.selectable_value(&mut config.method, m, m.label())
                    .on_hover_text(description(m));
            }
        })
        .response
        .on_hover_text(description(config.method))
        .labelled_by(method_label.id);
    show_parameters(ui, config);
    ui.separator();
    let lr_label = ui.label("Learning rate");
    let speed = config.learning_rate * 0.05;
    ui.add(
        egui::DragValue::new(&mut config.learning_rate)
            .speed(speed)
            .range(1e-7..=1e-1)
            .custom_formatter(|v, _| format!("{v:.1e}")),
    )
    .labelled_by(lr_label.id)
    .on_hover_text("AdamW step size. Higher forgets faster and risks collapse.");
    drag_usize(
        ui,
        "Steps",
        &mut config.steps,
        1..=100_000,
        "Optimiser steps.",
    );
    drag_usize(
        ui,
        "Batch",
        &mut config.batch_size,
        1..=256,
        "Forget rows per step (and as many retain rows).",
    );
    let seed_label = ui.label("Seed");
    ui.add(egui::DragValue::new(&mut config.seed))
        .labelled_by(seed_label.id)
        .on_hover_text("Same seed, same masks and batches: runs repeat exactly.");
}

/// The chosen method's own parameters.
fn show_parameters(ui: &mut egui::Ui, config: &mut UnlearnConfig) {
    let method = config.method;
    let p = &mut config.params;
    if method == Method::Mdu {
        labelled_slider(
            ui,
            "τ (anchor temperature)",
            &mut p.tau,
            0.0..=1.0,
            "target = τ·(z_u − η·(z_c − z_u)), z_u = logits without the question.\n\
             τ = 0: aim for a uniform (know-nothing) answer; τ = 1: aim for what the model says without the question.\n\
             Lower forgets more; higher keeps more fluency.",
        );
        labelled_slider(
            ui,
            "η (extrapolation)",
            &mut p.eta,
            0.0..=2.0,
            "Pushes the target further away from the question-conditioned prediction z_c. 0 = off.",
        );
        egui::ComboBox::from_label("KL direction")
            .selected_text(format!("{:?}", p.kl))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut p.kl, KlDirection::Forward, "Forward")
                    .on_hover_text("KL(p_model ‖ p_target), the paper's default");
                ui.selectable_value(&mut p.kl, KlDirection::Reverse, "Reverse")
                    .on_hover_text("KL(p_target ‖ p_model)");
                ui.selectable_value(&mut p.kl, KlDirection::Js, "Js")
                    .on_hover_text("Jensen–Shannon divergence");
            });
    }
    if method.uses_retain() {
        let tip = if method == Method::Rmu {
            "Weight of keeping the steered block's output on retain items where the frozen model has it."
        } else {
            "Weight of the retain diffusion loss. Higher keeps more of what should stay."
        };
        labelled_slider(ui, "α (retain weight)", &mut p.alpha, 0.0..=5.0, tip);
    }
    if !matches!(method, Method::Mdu | Method::Ga) {
        labelled_slider(
            ui,
            "γ (forget weight)",
            &mut p.gamma,
            0.0..=5.0,
            "Weight of the forget term.",
        );
    }
    match method {
        Method::Npo => labelled_slider(
            ui,
            "β (NPO)",
            &mut p.beta,
            0.01..=1.0,
            "NPO inverse temperature; the paper uses 0.1.",
        ),
        Method::SimNpo => {
            labelled_slider(
                ui,
                "β (SimNPO)",
                &mut p.simnpo_beta,
                0.01..=10.0,
                "SimNPO inverse temperature; open-unlearning uses 4.5 on TOFU.",
            );
            labelled_slider(
                ui,
                "δ (margin)",
                &mut p.delta,
                0.0..=5.0,
                "Subtracted from the per-token NLL before the sigmoid; open-unlearning uses 0.",
            );
        }
        Method::Wga => labelled_slider(
            ui,
            "β (weight exponent)",
            &mut p.wga_beta,
            0.0..=5.0,
            "Each token's ascent is weighted by p_θ(token)^β; 0 is plain gradient ascent.",
        ),
        Method::Undial => labelled_slider(
            ui,
            "β (logit penalty)",
            &mut p.undial_beta,
            0.0..=30.0,
            "How far the true token's logit is lowered in the teacher; open-unlearning uses 10.",
        ),
        Method::Rmu => {
            let mut layer = p
                .rmu_layer
                .unwrap_or(crate::unlearn::methods::rmu::PAPER_LAYER);
            drag_usize(
                ui,
                "Steered block",
                &mut layer,
                0..=255,
                "The block whose output is steered (0-based). The WMDP paper uses 7 for 7B models; \
                 a shallower model uses the block a quarter of the way down unless set.",
            );
            if layer
                != p.rmu_layer
                    .unwrap_or(crate::unlearn::methods::rmu::PAPER_LAYER)
            {
                p.rmu_layer = Some(layer);
            }
            labelled_slider(
                ui,
                "c (steering coefficient)",
                &mut p.rmu_coeff,
                0.1..=300.0,
                "Length of the random direction. The WMDP paper uses 6.5 for Zephyr-7B.",
            );
        }
        _ => {}
    }
}
