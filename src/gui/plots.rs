//! The live curves: loss and its parts, forget vs retain ROUGE-L, probability, truth ratio and
//! utility over steps. Live evaluations are lines, full evaluations (before/after) markers; all
//! plots share the x-axis; an overlay run is drawn dashed.

use eframe::egui;
use egui_plot::{HoverPosition, Legend, Line, LineStyle, MarkerShape, Plot, PlotPoints, Points};

use super::series::{ema, probability, rouge_recall, truth_ratio, RunRecord, Score};

/// Which curves a plot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotKind {
    Loss,
    Rouge,
    Probability,
    TruthRatio,
    Utility,
    /// The Inside view's plots (not in [`PlotKind::ALL`], which the Curves tab lays out).
    KlHeatmap,
    RoleBars,
    RoleConvergence,
}

impl PlotKind {
    pub const ALL: [PlotKind; 5] = [
        PlotKind::Loss,
        PlotKind::Rouge,
        PlotKind::Probability,
        PlotKind::TruthRatio,
        PlotKind::Utility,
    ];

    pub fn title(self) -> &'static str {
        match self {
            PlotKind::Loss => "Loss",
            PlotKind::Rouge => "ROUGE-L recall",
            PlotKind::Probability => "Probability (Eq. 14)",
            PlotKind::TruthRatio => "Truth ratio (MDU)",
            PlotKind::Utility => "Model utility (TOFU)",
            PlotKind::KlHeatmap => "KL along denoising",
            PlotKind::RoleBars => "KL per token role",
            PlotKind::RoleConvergence => "KL per role during the run",
        }
    }

    /// What the y-axis means and which way is good.
    pub fn help(self) -> &'static str {
        match self {
            PlotKind::Loss => "Training objective per step (total and parts). Forget parts may go negative for ascent methods; retain: lower is better.",
            PlotKind::Rouge => "Longest-common-subsequence recall of the generated answer against the gold one (rouge-score 0.1.2, stemmed). Forget: lower is better. Retain: higher is better.",
            PlotKind::Probability => "exp(−NLL per answer token), MDU paper Eq. 14. Forget: lower is better. Retain: higher is better.",
            PlotKind::TruthRatio => "exp(NLL(answer) − mean NLL(perturbed)) (MDU paper). Forget: towards 1 and above means the true answer is no longer preferred. Retain: lower is better.",
            PlotKind::Utility => "TOFU model utility: harmonic mean of probability, ROUGE-L and truth ratio on retain, real people and world facts. Higher is better. Full evaluations only.",
            PlotKind::KlHeatmap | PlotKind::RoleBars | PlotKind::RoleConvergence => "KL(p_conditional ‖ softmax(τ·z_u)) in nats at masked answer positions: the divergence MDU's forget term trains down.",
        }
    }

    /// Truth ratios span decades (a memorised answer sits near 1e-3), so that plot's axis is
    /// log10; the others are linear.
    fn to_axis(self, v: f64) -> f64 {
        match self {
            PlotKind::TruthRatio => v.max(1e-12).log10(),
            _ => v,
        }
    }

    fn from_axis(self, y: f64) -> f64 {
        match self {
            PlotKind::TruthRatio => 10f64.powf(y),
            _ => y,
        }
    }

    fn score(self) -> Option<Score> {
        match self {
            PlotKind::Rouge => Some(rouge_recall),
            PlotKind::Probability => Some(probability),
            PlotKind::TruthRatio => Some(truth_ratio),
            _ => None,
        }
    }
}

const FORGET: egui::Color32 = egui::Color32::from_rgb(220, 90, 60);
const RETAIN: egui::Color32 = egui::Color32::from_rgb(60, 140, 220);

/// The lines and markers of one plot for one run (`tag` prefixes names for an overlay run).
fn add_items(
    plot_ui: &mut egui_plot::PlotUi,
    kind: PlotKind,
    run: &RunRecord,
    smoothing: f64,
    tag: &str,
    dashed: bool,
) {
    let style = if dashed {
        LineStyle::dashed_loose()
    } else {
        LineStyle::Solid
    };
    let line = |name: String, pts: Vec<[f64; 2]>, color: egui::Color32| {
        Line::new(name, PlotPoints::from(pts))
            .color(color)
            .style(style)
    };
    match kind {
        PlotKind::Loss => {
            plot_ui.line(line(
                format!("{tag}total"),
                ema(&run.loss, smoothing),
                egui::Color32::GRAY,
            ));
            for (name, pts) in &run.parts {
                let color = if name.contains("forget") {
                    FORGET
                } else {
                    RETAIN
                };
                plot_ui.line(line(format!("{tag}{name}"), ema(pts, smoothing), color));
            }
        }
        PlotKind::Utility => {
            let pts: Vec<[f64; 2]> = run
                .evals
                .iter()
                .filter_map(|e| e.report.model_utility.map(|u| [e.step as f64, u]))
                .collect();
            plot_ui.points(
                Points::new(
                    format!("{tag}utility (full)"),
                    PlotPoints::from(pts.clone()),
                )
                .shape(MarkerShape::Diamond)
                .radius(5.0),
            );
            plot_ui.line(line(
                format!("{tag}utility"),
                pts,
                egui::Color32::from_rgb(90, 170, 90),
            ));
        }
        _ => {
            let score = kind.score().expect("an evaluation plot");
            let y = |pts: Vec<[f64; 2]>| -> Vec<[f64; 2]> {
                pts.into_iter().map(|[x, v]| [x, kind.to_axis(v)]).collect()
            };
            for (split, color) in [("forget", FORGET), ("retain", RETAIN)] {
                let live = y(run.eval_series(split, "live", score));
                plot_ui.line(line(format!("{tag}{split} (live)"), live, color));
                let full = y(run.eval_series(split, "full", score));
                plot_ui.points(
                    Points::new(format!("{tag}{split} (full)"), PlotPoints::from(full))
                        .color(color)
                        .shape(MarkerShape::Diamond)
                        .radius(5.0),
                );
            }
        }
    }
}

/// One plot with its title and an export button; returns the plot's screen rectangle (for the
/// PNG export) and whether export was asked.
pub fn show_plot(
    ui: &mut egui::Ui,
    kind: PlotKind,
    run: &RunRecord,
    overlay: Option<&RunRecord>,
    smoothing: f64,
    height: f32,
) -> (egui::Rect, bool) {
    let export = ui
        .horizontal(|ui| {
            ui.label(egui::RichText::new(kind.title()).strong())
                .on_hover_text(kind.help());
            ui.small_button("PNG…")
                .on_hover_text(format!("Export the {} plot as PNG.", kind.title()))
                .clicked()
        })
        .inner;
    let mut plot = Plot::new(("plot", kind.title()))
        .height(height)
        .legend(Legend::default())
        .link_axis("steps", [true, false])
        .link_cursor("steps", [true, false])
        .x_axis_label("step")
        .include_x(0.0)
        .include_x(run.steps_total.max(1) as f64)
        .label_formatter(|pos| {
            Some(match pos {
                HoverPosition::NearDataPoint {
                    plot_name,
                    position,
                    ..
                } => format!(
                    "{plot_name}\nstep {:.0}: {:.4}",
                    position.x,
                    kind.from_axis(position.y)
                ),
                HoverPosition::Elsewhere { position } => {
                    format!("step {:.0}\n{:.4}", position.x, kind.from_axis(position.y))
                }
            })
        });
    match kind {
        PlotKind::Loss => {}
        PlotKind::TruthRatio => {
            plot = plot
                .include_y(-3.0)
                .include_y(0.0)
                .y_axis_formatter(|mark, _| format!("{:.0e}", kind.from_axis(mark.value)))
                .y_axis_label("log scale");
        }
        _ => plot = plot.include_y(0.0).include_y(1.0),
    }
    let response = plot
        .show(ui, |plot_ui| {
            add_items(plot_ui, kind, run, smoothing, "", false);
            if let Some(o) = overlay {
                add_items(plot_ui, kind, o, smoothing, "other: ", true);
            }
        })
        .response;
    (response.rect, export)
}
