//! The denoising view for teaching: the sampler unmasks an answer step by step, before and after
//! unlearning side by side. The engine session computes the traces with the models it keeps; the
//! window only shows their strings.

use std::path::PathBuf;

use eframe::egui;

use crate::data::QaItem;
use crate::session::{Pending, Session, Trace, TraceRequest, MASKED};

/// The view's state: the chosen question, the two traces and the playback position.
#[derive(Default)]
pub struct DenoiseView {
    pub question: usize,
    pub before: Option<Result<Trace, String>>,
    pub after: Option<Result<Trace, String>>,
    jobs: Vec<(bool, Pending<Result<Trace, String>>)>,
    pub frame: usize,
    pub playing: bool,
    last_tick: f64,
}

impl DenoiseView {
    /// Asks the session for both traces (the after model only when a run has produced one).
    pub fn compute(
        &mut self,
        session: &Session,
        item: QaItem,
        before_dir: PathBuf,
        after_dir: Option<PathBuf>,
        device: String,
    ) {
        self.before = None;
        self.after = None;
        self.frame = 0;
        self.jobs.clear();
        for (is_after, dir) in [(false, Some(before_dir)), (true, after_dir)] {
            let Some(model_dir) = dir else { continue };
            let request = TraceRequest {
                model_dir,
                item: item.clone(),
                device: device.clone(),
                free_tokens: None,
            };
            self.jobs.push((is_after, session.trace(request)));
        }
    }

    /// Collects finished traces and advances playback; true while something is pending.
    pub fn poll(&mut self, now: f64) -> bool {
        for (is_after, job) in &mut self.jobs {
            if let Some(t) = job.poll() {
                if *is_after {
                    self.after = Some(t);
                } else {
                    self.before = Some(t);
                }
            }
        }
        self.jobs.retain(|(_, j)| j.is_pending());
        if self.playing && now - self.last_tick >= 0.25 {
            self.last_tick = now;
            if self.frame + 1 < self.frames() {
                self.frame += 1;
            } else {
                self.playing = false;
            }
        }
        !self.jobs.is_empty() || self.playing
    }

    fn frames(&self) -> usize {
        [&self.before, &self.after]
            .iter()
            .filter_map(|t| t.as_ref().and_then(|t| t.as_ref().ok()))
            .map(|t| t.frames.len())
            .max()
            .unwrap_or(0)
    }

    /// Returns true when the user asked to (re)compute.
    pub fn show(&mut self, ui: &mut egui::Ui, questions: &[QaItem], has_after: bool) -> bool {
        let mut compute = false;
        if questions.is_empty() {
            ui.label("Open a forget set to pick a question.");
            return false;
        }
        self.question = self.question.min(questions.len() - 1);
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("Question")
                .width(420.0)
                .selected_text(questions[self.question].question.clone())
                .show_ui(ui, |ui| {
                    for (i, q) in questions.iter().enumerate() {
                        if ui.selectable_value(&mut self.question, i, &q.question).changed() {
                            compute = true;
                        }
                    }
                });
            if ui
                .button("Denoise")
                .on_hover_text("Run the sampler on this question with the starting model and, after a run, the unlearned one.")
                .clicked()
            {
                compute = true;
            }
        });
        let frames = self.frames();
        let pending = !self.jobs.is_empty();
        ui.horizontal(|ui| {
            let play = if self.playing {
                "⏸ Pause"
            } else {
                "▶ Play"
            };
            if ui
                .add_enabled(frames > 0, egui::Button::new(play))
                .clicked()
            {
                if !self.playing && self.frame + 1 >= frames {
                    self.frame = 0;
                }
                self.playing = !self.playing;
            }
            if ui
                .add_enabled(frames > 0, egui::Button::new("Step ▶|"))
                .clicked()
            {
                self.playing = false;
                self.frame = (self.frame + 1).min(frames.saturating_sub(1));
            }
            if ui
                .add_enabled(frames > 0, egui::Button::new("⏮ Restart"))
                .clicked()
            {
                self.frame = 0;
            }
            if frames > 0 {
                ui.add(egui::Slider::new(&mut self.frame, 0..=frames - 1).text("step"));
            }
        });
        ui.label(format!("Gold answer: {}", questions[self.question].answer));
        ui.separator();
        ui.columns(2, |cols| {
            for (col, (title, t)) in cols.iter_mut().zip([
                ("Before unlearning", &self.before),
                ("After unlearning", &self.after),
            ]) {
                col.heading(title);
                match t {
                    Some(Ok(t)) => {
                        let k = self.frame.min(t.frames.len().saturating_sub(1));
                        if let Some(frame) = t.frames.get(k) {
                            let masked = frame.iter().filter(|p| *p == MASKED).count();
                            col.label(format!(
                                "step {} of {}: {masked} still masked",
                                k + 1,
                                t.frames.len()
                            ));
                            col.add(
                                egui::Label::new(
                                    egui::RichText::new(frame.concat()).monospace().size(16.0),
                                )
                                .wrap(),
                            );
                        }
                        if k + 1 >= t.frames.len() {
                            col.label(format!("Answer: {}", t.answer));
                        }
                    }
                    Some(Err(e)) => {
                        col.colored_label(col.visuals().error_fg_color, e);
                    }
                    None if title.starts_with("After") && !has_after => {
                        col.label("Run an unlearning first.");
                    }
                    None if pending => {
                        col.spinner();
                    }
                    None => {
                        col.label("Press Denoise.");
                    }
                }
            }
        });
        compute
    }
}
