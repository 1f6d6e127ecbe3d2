//! The τ trade-off explorer: queue MDU runs at several τ (and GA / NPO for comparison) with the
//! current setup, then plot each finished run as forget ROUGE-L against retain ROUGE-L (and
//! utility). Clicking a point opens that run.

use eframe::egui;
use egui_plot::{Legend, MarkerShape, Plot, PlotPoint, PlotPoints, Points, Text};

use super::actions::Action;
use super::history::HistoryEntry;
use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::sweep;
use crate::unlearn::Method;

pub struct TradeoffView {
    pub taus: String,
    /// The baselines queued with the τ runs, one flag per method other than MDU (`Method::ALL[1..]`).
    pub baselines: Vec<(Method, bool)>,
    /// Plot utility (y) instead of retain ROUGE-L.
    pub utility_axis: bool,
    pub error: Option<String>,
}

impl Default for TradeoffView {
    fn default() -> Self {
        Self {
            taus: "0, 0.25, 0.5, 0.75, 1".into(),
            baselines: Method::ALL
                .into_iter()
                .filter(|&m| m != Method::Mdu)
                .map(|m| (m, matches!(m, Method::Ga | Method::GradDiff | Method::Npo)))
                .collect(),
            utility_axis: false,
            error: None,
        }
    }
}

impl TradeoffView {
    /// One box per method other than MDU, to queue it beside the τ runs.
    fn baseline_boxes(&mut self, ui: &mut egui::Ui) {
        for (method, on) in &mut self.baselines {
            let short = if *method == Method::Ga {
                "GA"
            } else {
                method.label()
            };
            ui.checkbox(on, short)
                .on_hover_text(format!("Also run {} for comparison.", method.label()));
        }
    }
}

/// Parses "0, 0.5 1" into τ values in [0, 1].
pub fn parse_taus(text: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for part in text.split([',', ' ', ';']).filter(|p| !p.trim().is_empty()) {
        let v: f64 = part
            .trim()
            .parse()
            .map_err(|_| format!("“{}” is not a number", part.trim()))?;
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("τ = {v} is outside [0, 1]"));
        }
        out.push(v);
    }
    if out.is_empty() {
        return Err("no τ values".into());
    }
    Ok(out)
}

impl TradeoffView {
    /// `runs`: the explorer's finished runs (from history); `base`: the current setup.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        base: &UnlearnConfig,
        runs: &[HistoryEntry],
        queued: usize,
    ) -> Option<Action> {
        let mut action = None;
        ui.horizontal(|ui| {
            let l = ui.label("τ values");
            ui.add(egui::TextEdit::singleline(&mut self.taus).desired_width(180.0))
                .labelled_by(l.id)
                .on_hover_text("MDU runs to queue, one per τ in [0, 1], separated by commas.");
            self.baseline_boxes(ui);
            if ui
                .button("Queue runs")
                .on_hover_text("Runs them one after another with the current setup (learning rate, steps, batch, seed).")
                .clicked()
            {
                match parse_taus(&self.taus) {
                    Ok(taus) => {
                        self.error = None;
                        let baselines: Vec<Method> = self
                            .baselines
                            .iter()
                            .filter_map(|&(m, on)| on.then_some(m))
                            .collect();
                        action = Some(Action::Queue(sweep::configs(base, &taus, &baselines)));
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            if queued > 0 {
                ui.label(format!("{queued} queued"));
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.checkbox(&mut self.utility_axis, "Utility on the y-axis")
            .on_hover_text(
                "TOFU model utility (higher is better) instead of retain ROUGE-L recall.",
            );
        let y_name = if self.utility_axis {
            "model utility (higher is better)"
        } else {
            "retain ROUGE-L recall (higher is better)"
        };
        let points: Vec<(&HistoryEntry, [f64; 2])> = runs
            .iter()
            .filter_map(|r| {
                let (f, ret) = r.after?;
                let y = if self.utility_axis {
                    r.utility_after?
                } else {
                    ret
                };
                Some((r, [f, y]))
            })
            .collect();
        let before = runs.iter().find_map(|r| r.before);
        let response = Plot::new("tradeoff")
            // Bottom right: the top right is where the starting model's point sits.
            .legend(Legend::default().position(egui_plot::Corner::RightBottom))
            .x_axis_label("forget ROUGE-L recall (lower is better)")
            .y_axis_label(y_name)
            .include_x(0.0)
            .include_y(0.0)
            .include_x(1.0)
            .include_y(1.0)
            .show(ui, |plot_ui| {
                for (r, p) in &points {
                    let shape = match r.method {
                        Method::Mdu => MarkerShape::Circle,
                        Method::Ga => MarkerShape::Cross,
                        _ => MarkerShape::Square,
                    };
                    plot_ui.points(
                        Points::new(r.short_label(), PlotPoints::from(vec![*p]))
                            .shape(shape)
                            .radius(6.0),
                    );
                    // No name: the legend entry belongs to the point (a shared name greys it).
                    plot_ui.text(Text::new(
                        "",
                        PlotPoint::new(p[0], p[1] + 0.03),
                        r.short_label(),
                    ));
                }
                if let (Some((f, ret)), false) = (before, self.utility_axis) {
                    plot_ui.points(
                        Points::new("before", PlotPoints::from(vec![[f, ret]]))
                            .shape(MarkerShape::Diamond)
                            .radius(6.0),
                    );
                }
                let clicked = plot_ui.response().clicked();
                let at = plot_ui.pointer_coordinate();
                (clicked, at)
            });
        let (clicked, at) = response.inner;
        if let (true, Some(at)) = (clicked, at) {
            let nearest = points.iter().min_by(|a, b| {
                let d = |p: &[f64; 2]| (p[0] - at.x).powi(2) + (p[1] - at.y).powi(2);
                d(&a.1).total_cmp(&d(&b.1))
            });
            if let Some((r, p)) = nearest {
                if (p[0] - at.x).hypot(p[1] - at.y) < 0.08 {
                    action = Some(Action::OpenRun(r.dir.clone()));
                }
            }
        }
        if points.is_empty() {
            ui.label("Finished runs from the queue appear here, one labelled point each.");
        }
        action
    }
}
