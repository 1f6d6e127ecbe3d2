//! The denoising view for teaching: the sampler unmasks an answer step by step, before and after
//! unlearning side by side. The frames are computed on a worker (the window only shows strings);
//! the same worker path answers the prompt box.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::job::Job;
use crate::checkpoint::{Checkpoint, MemoryBudget};
use crate::data::QaItem;
use crate::device::{BackendTask, DeviceChoice};
use crate::diffusion::batch::SftExample;
use crate::diffusion::sampler::{generate, generate_dream, SamplerConfig, SamplerTokens};
use crate::eval::protocol::{sampler_config, Generation};
use crate::tokenizer::TextTokenizer;

/// Shown for a still-masked answer slot.
pub const MASKED: &str = "░";

/// Every step of one generation: the answer slots as text pieces.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub frames: Vec<Vec<String>>,
    pub answer: String,
}

struct TraceTask<'a> {
    model_dir: &'a Path,
    item: &'a QaItem,
    /// The slot size comes from the gold answer when there is one, else this many tokens.
    free_tokens: Option<usize>,
}

impl BackendTask for TraceTask<'_> {
    type Output = Result<Trace, String>;

    fn run<B: crate::device::EngineBackend>(self, device: &B::Device) -> Self::Output {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", self.model_dir.display());
        let ckpt = Checkpoint::open(self.model_dir).map_err(|e| err(&e))?;
        let tokenizer =
            TextTokenizer::from_dir(self.model_dir, &ckpt.config).map_err(|e| err(&e))?;
        let model = ckpt
            .load::<B>(device, &MemoryBudget::unlimited("worker"))
            .map_err(|e| err(&e))?;
        let prompt = SftExample::encode_pair(&tokenizer, &self.item.question, "")
            .map_err(|e| err(&e))?
            .prompt;
        let cfg = match self.free_tokens {
            Some(n) => SamplerConfig {
                max_new_tokens: n,
                block_size: n,
                steps: n,
                temperature: 0.0,
                suppress_tokens: vec![],
                seed: 0,
            },
            None => sampler_config(
                &model,
                &tokenizer,
                std::slice::from_ref(self.item),
                &Generation::Demo { margin: 4 },
            )
            .map_err(|e| err(&e))?,
        };
        let special = &tokenizer.special;
        let tokens = SamplerTokens {
            mask: special.mask,
            pad: special.eos,
            stops: [Some(special.eos), special.eot]
                .into_iter()
                .flatten()
                .collect(),
        };
        let mut frames = Vec::new();
        let piece = |id: u32| -> String {
            if id == special.mask {
                MASKED.to_string()
            } else if tokens.stops.contains(&id) {
                "⏹".to_string()
            } else {
                tokenizer.decode(&[id], false).unwrap_or_default()
            }
        };
        let on_step = |view: &crate::diffusion::sampler::StepView| {
            frames.push(view.answers[0].iter().map(|&id| piece(id)).collect());
        };
        let ids = if model.config.architecture.shifts_logits() {
            generate_dream(&model, &[prompt], &tokens, &cfg, 1e-3, device, on_step)
        } else {
            generate(&model, &[prompt], &tokens, &cfg, device, on_step)
        };
        let answer = tokenizer
            .decode(&ids[0], true)
            .map_err(|e| err(&e))?
            .trim()
            .to_string();
        Ok(Trace { frames, answer })
    }
}

/// Generates an answer to `item.question` with the model in `model_dir`, keeping every step.
pub fn trace(
    model_dir: &Path,
    item: &QaItem,
    device: &str,
    free_tokens: Option<usize>,
) -> Result<Trace, String> {
    let choice = DeviceChoice::parse(device)?;
    choice.run(TraceTask {
        model_dir,
        item,
        free_tokens,
    })
}

/// The view's state: the chosen question, the two traces and the playback position.
#[derive(Default)]
pub struct DenoiseView {
    pub question: usize,
    pub before: Option<Result<Trace, String>>,
    pub after: Option<Result<Trace, String>>,
    jobs: Vec<(bool, Job<Result<Trace, String>>)>,
    pub frame: usize,
    pub playing: bool,
    last_tick: f64,
}

impl DenoiseView {
    /// Starts computing both traces (the after model only when a run has produced one).
    pub fn compute(
        &mut self,
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
            let Some(dir) = dir else { continue };
            let (item, device) = (item.clone(), device.clone());
            self.jobs.push((
                is_after,
                Job::spawn("denoise", move || trace(&dir, &item, &device, None)),
            ));
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
        self.jobs.retain(|(_, j)| j.is_running());
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
