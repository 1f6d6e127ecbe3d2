//! The Privacy tab: the privacy audit of a run (membership inference on the forget set against
//! a holdout set, privleak, extraction strength, exact memorisation) before and after unlearning,
//! beside the retain-only model's numbers, each with the direction that is better.

use eframe::egui;

use super::series::RunRecord;
use crate::eval::privacy::{better, PrivacyReport};

/// What each number is, in a sentence (the row's tooltip).
fn explain(metric: &str) -> &'static str {
    match metric {
        "mia_loss" => "LOSS attack: the masked-diffusion per-token NLL (Eq. 14); remembered items have lower loss.",
        "mia_zlib" => "ZLib attack: the NLL divided by the answer's zlib-compressed length.",
        "mia_min_k" => "Min-K % attack: the mean of the 40 % lowest per-token log-probabilities (each token scored where it is masked).",
        "mia_min_k_plus_plus" => "Min-K %++ attack: Min-K % of log-probabilities standardised by the vocabulary's mean and spread at each position.",
        "mia_gradnorm" => "GradNorm attack: the mean L2 norm of the loss gradient over parameter tensors; remembered items have smaller gradients.",
        "mia_reference" => "Reference attack: the loss minus the retain-only model's loss on the same maskings.",
        "privleak" => "privleak (open-unlearning): Min-K %'s AUC relative to the retain-only model's, in %. 0 is as private as never having trained on the forget set; negative means the forget set is still told apart.",
        "extraction_strength" => "Extraction strength: 1 − k/L for the shortest answer prefix (k of L tokens) after which the sampler writes the rest exactly; mean over forget items.",
        "exact_memorization" => "Exact memorisation: the share of answer tokens the sampler writes in their place from the question alone; mean over forget items.",
        _ => "",
    }
}

/// privleak is a percentage (one decimal); the rest are shares (three).
fn cell(metric: &str, v: Option<f64>) -> String {
    match v {
        Some(v) if metric == "privleak" => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
        None => "–".into(),
    }
}

/// The tab: the audit at step 0 as "before", the last one after it as "after".
pub fn show_tab(ui: &mut egui::Ui, record: &RunRecord) {
    let audits: Vec<(usize, &PrivacyReport)> = record
        .evals
        .iter()
        .filter(|e| e.label != "live")
        .filter_map(|e| Some((e.step, e.report.privacy.as_ref()?)))
        .collect();
    let before = audits.iter().find(|a| a.0 == 0).map(|a| a.1);
    let after = audits.iter().rev().find(|a| a.0 > 0).map(|a| a.1);
    let Some(any) = after.or(before) else {
        ui.label(
            "No privacy audit yet. It runs before and after unlearning when a holdout file is \
             given (the demo ships one: people the model never saw). It asks whether the forget \
             set can still be told apart from the holdout set by membership-inference attacks, \
             compares that with the retain-only model (privleak), and measures how much of each \
             forget answer the sampler can still be made to write.",
        );
        return;
    };
    ui.label(format!(
        "{} forget items against {} holdout items; {}. AUC: 0.5 means the attack cannot tell \
         forget from holdout, towards 1 the forget set still looks like training data.",
        any.forget_items, any.holdout_items, any.estimator
    ));
    ui.add_space(6.0);
    let value = |r: Option<&PrivacyReport>, m: &str| -> Option<f64> {
        r.and_then(|r| r.open_unlearning_names().get(m).copied())
    };
    let mut metrics: Vec<String> = any.open_unlearning_names().into_keys().collect();
    metrics.sort_by_key(|m| (!m.starts_with("mia_"), m.clone()));
    egui::Grid::new("privacy_audit")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for h in ["metric", "before", "after", "retain-only model", "better"] {
                ui.strong(h);
            }
            ui.end_row();
            for m in &metrics {
                ui.label(m.as_str()).on_hover_text(explain(m));
                ui.label(cell(m, value(before, m)));
                ui.label(cell(m, value(after, m)));
                ui.label(cell(m, any.retain_only_auc.get(m).copied()));
                ui.label(better(m));
                ui.end_row();
            }
        });
}
