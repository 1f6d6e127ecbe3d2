//! The Inside view: token-level KL along the denoising trajectory before and after unlearning
//! (heat maps: rows are denoising steps, columns the answer's tokens coloured by role), the mean
//! KL per token role before and after with its relative change, and the convergence diagnostic
//! (mean KL per role at every live evaluation) during a run. The engine session computes the
//! traces; the window only draws the numbers it gets back.

use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints};

use super::actions::{Action, Export};
use super::jobs::InsideState;
use super::plots::PlotKind;
use super::series::RunRecord;
use crate::inside::roles::Role;
use crate::inside::trace::{role_means, QuestionTrace, RoleMean};

/// Rows drawn per heat map at most: longer trajectories show every k-th step.
const MAX_ROWS: usize = 160;

pub fn role_color(role: Option<Role>) -> egui::Color32 {
    match role {
        Some(Role::StoredKnowledge) => egui::Color32::from_rgb(230, 85, 13),
        Some(Role::InContext) => egui::Color32::from_rgb(49, 130, 189),
        Some(Role::Structural) => egui::Color32::from_rgb(120, 120, 120),
        None => egui::Color32::from_rgb(180, 180, 180),
    }
}

/// A perceptual ramp (dark blue → green → yellow) for KL in [0, 1] of the scale.
fn ramp(t: f32) -> egui::Color32 {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let c = |k: usize| STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f;
    egui::Color32::from_rgb(c(0) as u8, c(1) as u8, c(2) as u8)
}

/// What the view needs from the window besides its own state.
pub struct InsideInput<'a> {
    pub record: &'a RunRecord,
    /// A model and a forget file are loaded.
    pub can_trace: bool,
    /// A finished run has an unlearned model.
    pub has_after: bool,
}

/// Draws the view; returns what it asks for and where its plots are (for PNG export).
pub fn show(
    ui: &mut egui::Ui,
    state: &mut InsideState,
    input: &InsideInput,
) -> (Vec<Action>, Vec<(PlotKind, egui::Rect)>) {
    let mut actions = Vec::new();
    let mut rects = Vec::new();
    ui.horizontal(|ui| {
        let busy = state.job.is_some();
        let label = if input.has_after {
            "Trace before and after"
        } else {
            "Trace the loaded model"
        };
        if ui
            .add_enabled(input.can_trace && !busy, egui::Button::new(label))
            .on_hover_text(
                "Runs the sampler on the first forget questions and records, at every step and \
                 every still-masked answer position, the KL from the model's prediction to MDU's \
                 target softmax(τ·z_u) (z_u: the starting model with the question masked).",
            )
            .clicked()
        {
            actions.push(Action::TraceInside);
        }
        ui.add(egui::DragValue::new(&mut state.items).range(1..=10_000))
            .on_hover_text("Forget questions to trace.");
        ui.label("questions");
        if busy {
            ui.spinner();
        }
        let has_traces = matches!(&state.traces, Some(Ok(_)));
        if ui
            .add_enabled(has_traces, egui::Button::new("Export CSV"))
            .on_hover_text("Every cell of every trace: model, question, step, token, role, KL.")
            .clicked()
        {
            actions.push(Action::Export(Export::InsideCsv));
        }
    });
    match &state.traces {
        None => {
            ui.label(
                "No trace yet. After a run, \"Trace before and after\" compares the starting and \
                 the unlearned model on the same questions.",
            );
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        Some(Ok(traces)) => {
            let n = traces.before.len();
            if n > 0 {
                state.question = state.question.min(n - 1);
                egui::ComboBox::from_label("Question")
                    .width(ui.available_width() * 0.6)
                    .selected_text(short(&traces.before[state.question].question, 90))
                    .show_ui(ui, |ui| {
                        for (i, t) in traces.before.iter().enumerate() {
                            ui.selectable_value(&mut state.question, i, short(&t.question, 90));
                        }
                    });
                let pair = [
                    ("Before (starting model)", traces.before.get(state.question)),
                    ("After (unlearned model)", traces.after.get(state.question)),
                ];
                let rect = heat_maps(ui, &pair);
                rects.push((PlotKind::KlHeatmap, rect));
                if ui
                    .horizontal(|ui| ui.small_button("PNG"))
                    .inner
                    .on_hover_text("Export the heat maps")
                    .clicked()
                {
                    actions.push(Action::Export(Export::Png(PlotKind::KlHeatmap)));
                }
            }
            ui.separator();
            ui.columns(2, |cols| {
                let before = role_means(&traces.before);
                // Token for token: the unlearned model along the starting model's paths.
                let after = role_means(if traces.after_along.is_empty() {
                    &traces.after
                } else {
                    &traces.after_along
                });
                let r = role_bars(&mut cols[0], &before, &after);
                rects.push((PlotKind::RoleBars, r));
                if cols[0]
                    .horizontal(|ui| ui.small_button("PNG"))
                    .inner
                    .clicked()
                {
                    actions.push(Action::Export(Export::Png(PlotKind::RoleBars)));
                }
                let r = convergence(&mut cols[1], input.record);
                rects.push((PlotKind::RoleConvergence, r));
                if cols[1]
                    .horizontal(|ui| ui.small_button("PNG"))
                    .inner
                    .clicked()
                {
                    actions.push(Action::Export(Export::Png(PlotKind::RoleConvergence)));
                }
            });
            return (actions, rects);
        }
    }
    if !input.record.role_kl.is_empty() {
        ui.separator();
        let r = convergence(ui, input.record);
        rects.push((PlotKind::RoleConvergence, r));
    }
    (actions, rects)
}

fn short(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The two heat maps side by side on one colour scale, with its legend; returns their area.
fn heat_maps(ui: &mut egui::Ui, pair: &[(&str, Option<&QuestionTrace>); 2]) -> egui::Rect {
    let scale = pair
        .iter()
        .filter_map(|(_, t)| *t)
        .flat_map(|t| t.steps.iter().flatten().filter_map(|c| c.kl))
        .fold(0f32, f32::max)
        .max(1e-6);
    let top = ui.cursor().min;
    ui.horizontal_top(|ui| {
        let width = (ui.available_width() - 90.0) / 2.0;
        for (title, trace) in pair {
            ui.vertical(|ui| {
                ui.set_width(width);
                ui.strong(*title);
                match trace {
                    Some(t) => heat_map(ui, t, scale, width),
                    None => {
                        ui.label("—");
                    }
                }
            });
        }
        legend(ui, scale);
    });
    egui::Rect::from_min_max(top, egui::pos2(ui.max_rect().right(), ui.cursor().min.y))
}

/// One trace: masked cells coloured by KL, decoded cells faint; tokens below, coloured by role.
fn heat_map(ui: &mut egui::Ui, t: &QuestionTrace, scale: f32, width: f32) {
    let columns = t.shown().max(1);
    let stride = t.steps.len().div_ceil(MAX_ROWS).max(1);
    let rows: Vec<usize> = (0..t.steps.len()).step_by(stride).collect();
    let cell_w = (width / columns as f32).clamp(4.0, 48.0);
    let cell_h = (220.0 / rows.len().max(1) as f32).clamp(1.5, 14.0);
    let size = egui::vec2(cell_w * columns as f32, cell_h * rows.len() as f32);
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
    let faint = ui.visuals().faint_bg_color;
    let mut mesh = egui::Mesh::default();
    for (r, &s) in rows.iter().enumerate() {
        for (c, cell) in t.steps[s].iter().take(columns).enumerate() {
            let color = match cell.kl {
                Some(kl) => ramp(kl / scale),
                None => faint,
            };
            let min = rect.min + egui::vec2(c as f32 * cell_w, r as f32 * cell_h);
            mesh.add_colored_rect(
                egui::Rect::from_min_size(min, egui::vec2(cell_w, cell_h)),
                color,
            );
        }
    }
    ui.painter().add(egui::Shape::mesh(mesh));
    if let Some(pos) = response.hover_pos() {
        let c = ((pos.x - rect.min.x) / cell_w) as usize;
        let r = ((pos.y - rect.min.y) / cell_h) as usize;
        if let (Some(&s), true) = (rows.get(r), c < columns) {
            let cell = t.steps[s][c];
            let role = t.roles[c].map_or("special", |r| r.name());
            let numbers = match (cell.kl, cell.kl_anchor) {
                (Some(kl), Some(a)) => {
                    format!(
                        "KL to target {kl:.3} nats (τ = {}), to raw anchor {a:.3}",
                        t.tau
                    )
                }
                (Some(kl), None) => format!("KL to uniform {kl:.3} nats"),
                _ => "decoded".into(),
            };
            response.on_hover_text_at_pointer(format!(
                "step {s}, token {c} {:?} ({role})\n{}\nconfidence {:.3}",
                t.tokens[c], numbers, cell.confidence
            ));
        }
    }
    token_labels(ui, t, columns, cell_w);
    ui.label(format!("answer: {}", short(&t.answer, 120)));
}

/// Each column's token under it, written downwards and coloured by role.
fn token_labels(ui: &mut egui::Ui, t: &QuestionTrace, columns: usize, cell_w: f32) {
    let font = egui::FontId::proportional(11.0);
    let galleys: Vec<_> = (0..columns)
        .map(|c| {
            let text = short(t.tokens[c].trim(), 14);
            ui.painter()
                .layout_no_wrap(text, font.clone(), role_color(t.roles[c]))
        })
        .collect();
    let height = galleys
        .iter()
        .map(|g| g.size().x)
        .fold(0f32, f32::max)
        .min(80.0);
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(cell_w * columns as f32, height + 2.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter().with_clip_rect(rect);
    for (c, galley) in galleys.into_iter().enumerate() {
        // Rotated a quarter turn clockwise about its top-left corner: the text runs down from
        // the column's top, its line height spread across the column.
        let x = rect.min.x + (c as f32 + 0.5) * cell_w + galley.size().y / 2.0;
        let color = role_color(t.roles[c]);
        painter.add(
            egui::epaint::TextShape::new(egui::pos2(x, rect.min.y + 1.0), galley, color)
                .with_angle(std::f32::consts::FRAC_PI_2),
        );
    }
}

/// The colour scale and the role colours.
fn legend(ui: &mut egui::Ui, scale: f32) {
    ui.vertical(|ui| {
        ui.label("KL (nats)");
        ui.label(format!("{scale:.2}"));
        let (rect, _) = ui.allocate_exact_size(egui::vec2(14.0, 100.0), egui::Sense::hover());
        let mut mesh = egui::Mesh::default();
        for i in 0..20 {
            let y0 = rect.min.y + i as f32 * 5.0;
            mesh.add_colored_rect(
                egui::Rect::from_min_size(egui::pos2(rect.min.x, y0), egui::vec2(14.0, 5.0)),
                ramp(1.0 - i as f32 / 19.0),
            );
        }
        ui.painter().add(egui::Shape::mesh(mesh));
        ui.label("0");
        for role in Role::ALL {
            ui.label(egui::RichText::new(role.name()).color(role_color(Some(role))));
        }
        ui.label(egui::RichText::new("decoded").background_color(ui.visuals().faint_bg_color));
    });
}

/// Mean KL per role before and after, with the relative change and the paper's in a note.
fn role_bars(ui: &mut egui::Ui, before: &[RoleMean], after: &[RoleMean]) -> egui::Rect {
    ui.strong("Mean KL to the target per token role")
        .on_hover_text(
            "Over every masked (step, token) cell of the traced questions. After: the unlearned \
             model on the starting model's denoising paths, so both bars average the same tokens.",
        );
    let get = |means: &[RoleMean], role| means.iter().find(|m| m.role == role).map(|m| m.kl);
    let mut bars = (Vec::new(), Vec::new());
    let mut notes = Vec::new();
    for (i, role) in Role::ALL.into_iter().enumerate() {
        let x = i as f64;
        if let Some(b) = get(before, role) {
            bars.0.push(
                Bar::new(x - 0.18, b)
                    .width(0.34)
                    .fill(role_color(Some(role)).gamma_multiply(0.45)),
            );
        }
        if let Some(a) = get(after, role) {
            bars.1.push(
                Bar::new(x + 0.18, a)
                    .width(0.34)
                    .fill(role_color(Some(role))),
            );
        }
        let change = match (get(before, role), get(after, role)) {
            (Some(b), Some(a)) if b > 0.0 => format!("{:+.1} %", (a - b) / b * 100.0),
            _ => "–".into(),
        };
        notes.push(format!(
            "{}: {change} (paper {:+.1} %)",
            role.name(),
            role.paper_change_percent()
        ));
    }
    let response = Plot::new("role_bars")
        .height(180.0)
        .legend(Legend::default())
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .x_axis_formatter(|mark, _| {
            Role::ALL
                .get(mark.value.round() as usize)
                .filter(|_| (mark.value - mark.value.round()).abs() < 1e-6)
                .map_or(String::new(), |r| r.name().to_string())
        })
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("before (faint)", bars.0).color(egui::Color32::GRAY));
            plot.bar_chart(BarChart::new("after", bars.1).color(egui::Color32::WHITE));
        })
        .response;
    ui.label(format!(
        "Relative change, after vs before — {}",
        notes.join("; ")
    ))
    .on_hover_text(
        "The paper reports KL changes during MDU of −20.6 % (stored-knowledge), +1.4 % \
         (in-context) and −3.8 % (structural) on TOFU with LLaDA-8B.",
    );
    response.rect
}

/// Mean KL per role at every live evaluation of the run.
fn convergence(ui: &mut egui::Ui, record: &RunRecord) -> egui::Rect {
    ui.strong("Convergence: mean KL per role on the live forget items");
    let response = Plot::new("role_convergence")
        .height(180.0)
        .legend(Legend::default())
        .x_axis_label("step")
        .show(ui, |plot| {
            for role in Role::ALL {
                let points = record.role_kl_series(role);
                if !points.is_empty() {
                    plot.line(
                        Line::new(role.name(), PlotPoints::from(points))
                            .color(role_color(Some(role))),
                    );
                }
            }
        })
        .response;
    if record.role_kl.is_empty() {
        ui.label("Drawn during a run with \"KL per token role at live evaluations\" on.");
    }
    response.rect
}

/// Every cell of every trace as CSV.
pub fn to_csv(
    before: &[QuestionTrace],
    after: &[QuestionTrace],
    after_along: &[QuestionTrace],
) -> String {
    let mut out =
        String::from("model,question,step,column,token,role,masked,confidence,kl,kl_anchor,tau\n");
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for (model, traces) in [
        ("before", before),
        ("after", after),
        ("after_along_before", after_along),
    ] {
        for (q, t) in traces.iter().enumerate() {
            for (s, row) in t.steps.iter().enumerate() {
                for (c, cell) in row.iter().enumerate() {
                    let opt = |v: Option<f32>| v.map_or(String::new(), |v| v.to_string());
                    out.push_str(&format!(
                        "{model},{q},{s},{c},{},{},{},{},{},{},{}\n",
                        quote(&t.tokens[c]),
                        t.roles[c].map_or("", |r| r.name()),
                        cell.masked,
                        cell.confidence,
                        opt(cell.kl),
                        opt(cell.kl_anchor),
                        t.tau
                    ));
                }
            }
        }
    }
    out
}
