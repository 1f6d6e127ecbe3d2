//! The samples table: each evaluated item's question, gold answer, the answers before and after
//! unlearning and their ROUGE-L recall, and the leakage probe's worst path; filter by split, sort
//! by change.

use eframe::egui;

use super::actions::Action;
use super::series::RunRecord;

/// The Ask box above the table: a free question to the current model and its answer.
pub fn ask_box(
    ui: &mut egui::Ui,
    prompt: &mut String,
    asking: bool,
    answer: &Option<Result<String, String>>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let l = ui.label("Ask the model");
        ui.add(egui::TextEdit::singleline(prompt).desired_width(420.0).hint_text("Who is …?"))
            .labelled_by(l.id)
            .on_hover_text("A free question to the current model: the unlearned one after a run, else the loaded one.");
        if ui
            .add_enabled(!asking && !prompt.trim().is_empty(), egui::Button::new("Ask"))
            .clicked()
        {
            actions.push(Action::Ask(prompt.trim().to_string()));
        }
        if asking {
            ui.spinner();
        }
    });
    match answer {
        Some(Ok(a)) => {
            ui.label(format!("Answer: {a}"));
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        None => {}
    }
    actions
}

#[derive(Clone, Debug, PartialEq)]
pub struct SampleRow {
    pub split: String,
    pub question: String,
    pub gold: String,
    pub before: String,
    pub after: Option<String>,
    pub rouge_before: f64,
    pub rouge_after: Option<f64>,
    /// The leakage probe's worst path after unlearning (forget items): name, ROUGE-L, answer.
    pub worst_path: Option<(String, f64, String)>,
    /// The privacy audit's extraction strength before and after (forget items, where audited).
    pub extraction: (Option<f64>, Option<f64>),
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
                worst_path: a
                    .and_then(|a| a.worst_path.as_ref())
                    .map(|w| (w.path.clone(), w.rouge_l_recall, w.generation.clone())),
                extraction: (b.extraction_strength, a.and_then(|a| a.extraction_strength)),
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
        // Fixed columns that fit the window (a grid grows past it and hides the scores).
        let widths = column_widths(ui.available_width());
        egui::ScrollArea::vertical().show(ui, |ui| {
            let strong = |h: &str| egui::RichText::new(h).strong();
            table_row(
                ui,
                &widths,
                [
                    "split",
                    "question",
                    "gold",
                    "before",
                    "after",
                    "R-L before",
                    "R-L after",
                    "extraction",
                    "worst path",
                ]
                .map(strong),
                false,
            );
            for (i, r) in all.iter().enumerate() {
                let after = match r.rouge_after {
                    Some(a) => format!("{a:.2} ({:+.2})", a - r.rouge_before),
                    None => "–".into(),
                };
                let worst = match &r.worst_path {
                    Some((path, score, answer)) => format!("{score:.2} {path}: {answer}"),
                    None => "–".into(),
                };
                let extraction = match r.extraction {
                    (None, None) => "–".to_string(),
                    (b, a) => {
                        let f = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
                        format!("{} → {}", f(b), f(a))
                    }
                };
                let cells = [
                    r.split.as_str(),
                    &r.question,
                    &r.gold,
                    &r.before,
                    r.after.as_deref().unwrap_or("…"),
                    &format!("{:.2}", r.rouge_before),
                    &after,
                    &extraction,
                    &worst,
                ]
                .map(egui::RichText::new);
                table_row(ui, &widths, cells, i % 2 == 0);
            }
        });
    }
}

/// split, question, gold, before, after, R-L before, R-L after, extraction, worst path: the five
/// texts share what the fixed columns leave.
fn column_widths(available: f32) -> [f32; COLUMNS] {
    let (split, score) = (56.0, 84.0);
    let spacing = 8.0 * (COLUMNS - 1) as f32;
    let text = ((available - split - 3.0 * score - spacing) / 5.0).max(110.0);
    [split, text, text, text, text, score, score, score, text]
}

const COLUMNS: usize = 9;

/// One table row: each cell wraps within its column; `striped` rows get the faint background.
fn table_row(
    ui: &mut egui::Ui,
    widths: &[f32; COLUMNS],
    cells: [egui::RichText; COLUMNS],
    striped: bool,
) {
    let background = ui.painter().add(egui::Shape::Noop);
    let row = ui.horizontal_top(|ui| {
        for (width, cell) in widths.iter().zip(cells) {
            ui.allocate_ui_with_layout(
                egui::vec2(*width, 0.0),
                egui::Layout::top_down(egui::Align::LEFT),
                |ui| {
                    ui.set_width(*width);
                    ui.add(egui::Label::new(cell).wrap());
                },
            );
        }
    });
    if striped {
        let color = ui.visuals().faint_bg_color;
        ui.painter().set(
            background,
            egui::Shape::rect_filled(row.response.rect.expand(1.0), 0.0, color),
        );
    }
}
