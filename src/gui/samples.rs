//! The samples table: each evaluated item's question, gold answer, the answers before and after
//! unlearning and their ROUGE-L recall; filter by split, sort by change.

use eframe::egui;

use super::series::RunRecord;

#[derive(Clone, Debug, PartialEq)]
pub struct SampleRow {
    pub split: String,
    pub question: String,
    pub gold: String,
    pub before: String,
    pub after: Option<String>,
    pub rouge_before: f64,
    pub rouge_after: Option<f64>,
}

impl SampleRow {
    /// After − before ROUGE-L recall (0 until the after evaluation exists).
    pub fn change(&self) -> f64 {
        self.rouge_after.map_or(0.0, |a| a - self.rouge_before)
    }
}

/// Joins the before and after details of every split by item index.
pub fn rows(run: &RunRecord) -> Vec<SampleRow> {
    let mut out = Vec::new();
    for ((when, split), before) in &run.samples {
        if when != "before" {
            continue;
        }
        let after = run.samples.get(&("after".to_string(), split.clone()));
        for b in before {
            let a = after.and_then(|a| a.iter().find(|x| x.index == b.index));
            out.push(SampleRow {
                split: split.clone(),
                question: b.question.clone(),
                gold: b.gold.clone(),
                before: b.generation.clone(),
                after: a.map(|a| a.generation.clone()),
                rouge_before: b.rouge_l.recall,
                rouge_after: a.map(|a| a.rouge_l.recall),
            });
        }
    }
    out
}

#[derive(Default)]
pub struct SamplesView {
    pub split: Option<String>,
    pub sort_by_change: bool,
}

impl SamplesView {
    pub fn show(&mut self, ui: &mut egui::Ui, run: &RunRecord) {
        let mut all = rows(run);
        if all.is_empty() {
            ui.label("No evaluated samples yet: they appear after the evaluation before training.");
            return;
        }
        let mut splits: Vec<String> = all.iter().map(|r| r.split.clone()).collect();
        splits.dedup();
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("Split")
                .selected_text(self.split.clone().unwrap_or_else(|| "all".into()))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.split, None, "all");
                    for s in &splits {
                        ui.selectable_value(&mut self.split, Some(s.clone()), s);
                    }
                });
            ui.checkbox(&mut self.sort_by_change, "Sort by change")
                .on_hover_text("Largest drop in ROUGE-L recall first (forget: a drop is the goal; retain: a drop is damage).");
        });
        if let Some(s) = &self.split {
            all.retain(|r| &r.split == s);
        }
        if self.sort_by_change {
            all.sort_by(|a, b| a.change().total_cmp(&b.change()));
        }
        egui::ScrollArea::both().show(ui, |ui| {
            egui::Grid::new("samples")
                .striped(true)
                .num_columns(7)
                .max_col_width(260.0)
                .show(ui, |ui| {
                    for h in [
                        "split",
                        "question",
                        "gold",
                        "before",
                        "after",
                        "R-L before",
                        "R-L after",
                    ] {
                        ui.label(egui::RichText::new(h).strong());
                    }
                    ui.end_row();
                    for r in &all {
                        ui.label(&r.split);
                        ui.add(egui::Label::new(&r.question).wrap());
                        ui.add(egui::Label::new(&r.gold).wrap());
                        ui.add(egui::Label::new(&r.before).wrap());
                        ui.add(egui::Label::new(r.after.as_deref().unwrap_or("…")).wrap());
                        ui.label(format!("{:.2}", r.rouge_before));
                        match r.rouge_after {
                            Some(a) => ui.label(format!("{a:.2} ({:+.2})", a - r.rouge_before)),
                            None => ui.label("–"),
                        };
                        ui.end_row();
                    }
                });
        });
    }
}
