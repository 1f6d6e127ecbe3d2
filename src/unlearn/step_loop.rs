//! The training steps of a run: seeded batches, the method's loss over micro-batches, clipping,
//! the optimiser step, live evaluations with early stop and the collapse warning, checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use serde::{Deserialize, Serialize};

use super::config::UnlearnConfig;
use super::evaluation::Evaluation;
use super::inputs::Data;
use super::methods::{StepBatches, StepContext};
use super::run_dir::{MetricsLog, RunDir};
use super::Stopped;
use crate::checkpoint::{self, WeightLayout};
use crate::diffusion::batch::{SftBatch, SftExample};
use crate::diffusion::loss::{LossWeighting, NoisedBatch};
use crate::eval::protocol::EvalError;
use crate::events::{Event, StopFlag};
use crate::model::{loss_and_gradients, MaskedDiffusionLm};
use crate::rng::SplitMix64;
use crate::tokenizer::SpecialTokens;
use crate::train::clip::{clip_global_norm, global_grad_norm};

/// Progress saved with each checkpoint; `--resume` continues from the newest.
#[derive(Serialize, Deserialize)]
pub struct TrainerState {
    pub step: usize,
    pub live_history: Vec<(usize, f64, f64)>,
}

/// What the loop reads and never changes.
pub struct LoopInputs<'a, B: AutodiffBackend> {
    pub config: &'a UnlearnConfig,
    pub data: &'a Data,
    /// The frozen starting model (MDU's anchor, NPO's reference), for the methods that read it.
    pub reference: Option<&'a MaskedDiffusionLm<B::InnerBackend>>,
    pub special: &'a SpecialTokens,
    /// `special.all()`: ids MDU's KL leaves out when `exclude_special` is set.
    pub special_ids: Vec<u32>,
    pub weighting: LossWeighting,
    pub device: &'a B::Device,
    pub run_dir: &'a RunDir,
    pub saver: CheckpointSaver<'a>,
    pub started: Instant,
    pub stop: &'a StopFlag,
    /// Per-block activation checkpointing (`model::checkpointing`).
    pub checkpointing: bool,
}

/// Writes `checkpoint-N/`: a loadable model in the input's layout, or with LoRA the adapter as a
/// PEFT folder on top of the input; plus the trainer records.
pub struct CheckpointSaver<'a> {
    pub layout: &'a WeightLayout,
    /// The full input model (its tokenizer and config files are copied; an adapter names it as
    /// its base).
    pub source: &'a Path,
}

impl CheckpointSaver<'_> {
    pub fn save<B: AutodiffBackend, O: Optimizer<MaskedDiffusionLm<B>, B>>(
        &self,
        run_dir: &RunDir,
        model: &MaskedDiffusionLm<B>,
        optim: &O,
        state: &TrainerState,
        step: usize,
        best: bool,
    ) -> Result<PathBuf> {
        let dir = run_dir.checkpoint_dir(step);
        let written = run_dir.replace_folder(&dir, |staged| {
            self.save_model(&model.valid(), staged)?;
            crate::train::resume::save(staged, model, optim, state)
        });
        if let Err(e) = written {
            return Err(e.context(format!(
                "{}: saving the checkpoint failed; the earlier checkpoints are intact and --resume continues from the newest",
                dir.display()
            )));
        }
        if best {
            run_dir.write_best(step, &dir)?;
        }
        Ok(dir)
    }

    /// The model as a loadable folder `dir`: the whole model, or only its adapters.
    pub fn save_model<B: burn::tensor::backend::Backend>(
        &self,
        model: &MaskedDiffusionLm<B>,
        dir: &Path,
    ) -> Result<()> {
        match &model.adapters {
            Some(adapters) => {
                let base = self
                    .source
                    .canonicalize()
                    .unwrap_or(self.source.to_path_buf());
                checkpoint::save_adapter(adapters, &model.config, &base, dir)?
            }
            None => checkpoint::save(model, self.layout, Some(self.source), dir)?,
        }
        Ok(())
    }
}

/// The model and optimiser as they change, and the loop's own progress.
pub struct Training<B: AutodiffBackend, O> {
    pub model: MaskedDiffusionLm<B>,
    pub optim: O,
    pub state: TrainerState,
}

/// The step and summed loss parts of one optimiser step.
struct StepOutcome {
    loss: f64,
    parts: BTreeMap<String, f64>,
    tokens: usize,
    grad_norm: f64,
    lr: f64,
}

/// Trains from `training.state.step` to `config.steps` (or an early stop); returns the last step.
/// A stop request saves a checkpoint and returns [`Stopped`] after sending the event.
pub fn run_steps<B, O>(
    inputs: &LoopInputs<B>,
    training: Training<B, O>,
    eval: &Evaluation<B::InnerBackend>,
    metrics: &mut MetricsLog,
    sink: &mut dyn FnMut(Event),
) -> Result<(Training<B, O>, usize)>
where
    B: AutodiffBackend + crate::kernels::KlBackend,
    O: Optimizer<MaskedDiffusionLm<B>, B>,
{
    let config = inputs.config;
    let mut training = training;
    let mut live = LiveTracker::new(&training.state);
    let mut last_tick = Instant::now();
    let mut step = training.state.step;
    while step < config.steps {
        if inputs.stop.is_set() {
            let t = &training;
            inputs
                .saver
                .save(inputs.run_dir, &t.model, &t.optim, &t.state, step, false)?;
            metrics.write_csv()?;
            sink(Event::Stopped {
                step,
                run_dir: inputs.run_dir.path.clone(),
            });
            return Err(Stopped.into());
        }
        let outcome;
        (training, outcome) = one_step(inputs, training, step)?;
        step += 1;
        training.state.step = step;
        let elapsed = last_tick.elapsed().as_secs_f64();
        last_tick = Instant::now();
        let event = Event::Step {
            step,
            steps: config.steps,
            loss: outcome.loss,
            parts: outcome.parts,
            lr: outcome.lr,
            grad_norm: outcome.grad_norm,
            tokens_per_s: outcome.tokens as f64 / elapsed.max(1e-9),
            elapsed_s: inputs.started.elapsed().as_secs_f64(),
        };
        let mut row = serde_json::to_value(&event)?;
        metrics.append(&row)?;
        sink(event);

        let live_now =
            config.live_every > 0 && (step % config.live_every == 0 || step == config.steps);
        if live_now {
            let report = match eval.live(&training.model.valid()) {
                Ok(r) => r,
                Err(EvalError::Stopped) => continue,
                Err(e) => return Err(e.into()),
            };
            let early_stop = live.record(
                step,
                report,
                &mut row,
                config,
                metrics,
                sink,
                &mut training.state,
            )?;
            if config.live_role_kl {
                live_role_kl(inputs, eval, &training.model.valid(), step, metrics, sink)?;
            }
            if early_stop {
                metrics.push_row(row);
                break;
            }
        }
        metrics.push_row(row);
        if config.save_every > 0 && step % config.save_every == 0 && step < config.steps {
            let is_best = live.best.is_some_and(|(_, s)| s == step);
            let t = &training;
            let path =
                inputs
                    .saver
                    .save(inputs.run_dir, &t.model, &t.optim, &t.state, step, is_best)?;
            inputs.run_dir.prune_checkpoints(config.keep_checkpoints)?;
            sink(Event::Checkpoint {
                step,
                path,
                best: is_best,
            });
        }
    }
    metrics.write_csv()?;
    Ok((training, step))
}

/// The convergence diagnostic after a live evaluation ([`Evaluation::live_role_kl`]): against
/// the starting model where the run keeps it, at MDU's τ (0, the uniform target, for the other
/// methods, which have no τ). A failure is a warning: the run goes on.
fn live_role_kl<B: AutodiffBackend>(
    inputs: &LoopInputs<B>,
    eval: &Evaluation<B::InnerBackend>,
    model: &MaskedDiffusionLm<B::InnerBackend>,
    step: usize,
    metrics: &mut MetricsLog,
    sink: &mut dyn FnMut(Event),
) -> Result<()> {
    let config = inputs.config;
    let tau = match config.method {
        super::methods::Method::Mdu => config.params.tau,
        _ => 0.0,
    };
    match eval.live_role_kl(model, inputs.reference, tau) {
        Ok(means) => {
            let event = Event::RoleKl { step, means };
            metrics.append(&serde_json::to_value(&event)?)?;
            sink(event);
        }
        Err(e) => sink(Event::Warning {
            message: format!("step {step}: the KL-per-role diagnostic failed: {e:#}"),
        }),
    }
    Ok(())
}

/// The micro-batches of step `step` (index from 0), their gradients summed, clipped and applied.
fn one_step<B, O>(
    inputs: &LoopInputs<B>,
    training: Training<B, O>,
    step: usize,
) -> Result<(Training<B, O>, StepOutcome)>
where
    B: AutodiffBackend + crate::kernels::KlBackend,
    O: Optimizer<MaskedDiffusionLm<B>, B>,
{
    let config = inputs.config;
    let lr = config.lr_at(step);
    let micro = config.grad_accum.max(1);
    let mut grads_total: Option<GradientsParams> = None;
    let mut parts_sum: BTreeMap<String, f64> = BTreeMap::new();
    let mut loss_sum = 0.0;
    let mut tokens = 0usize;
    for m in 0..micro {
        let (total, (parts, n_tokens), grads) =
            loss_and_gradients(&training.model, inputs.checkpointing, |model| {
                let (total, parts, n_tokens) = micro_batch_loss(inputs, model, step * micro + m);
                (total / micro as f32, (parts, n_tokens))
            });
        for (name, value) in parts {
            *parts_sum.entry(name).or_default() += value / micro as f64;
        }
        tokens += n_tokens;
        loss_sum += total.into_scalar().elem::<f64>();
        grads_total = Some(match grads_total {
            None => grads,
            Some(acc) => crate::train::accumulate_grads(&training.model, acc, grads),
        });
    }
    if !loss_sum.is_finite() {
        let t = &training;
        inputs
            .saver
            .save(inputs.run_dir, &t.model, &t.optim, &t.state, step, false)?;
        bail!(
            "step {}: the loss is {loss_sum} (not finite); the run stopped and kept the last good state (checkpoint-{step}). Lower the learning rate",
            step + 1
        );
    }
    let mut grads = grads_total.expect("at least one micro-batch");
    let grad_norm = if config.max_grad_norm > 0.0 {
        clip_global_norm::<B, _>(&training.model, &mut grads, config.max_grad_norm)
    } else {
        global_grad_norm::<B, _>(&training.model, &grads)
    };
    let Training {
        model,
        mut optim,
        state,
    } = training;
    let model = optim.step(lr, model, grads);
    let outcome = StepOutcome {
        loss: loss_sum,
        parts: parts_sum,
        tokens,
        grad_norm,
        lr,
    };
    Ok((
        Training {
            model,
            optim,
            state,
        },
        outcome,
    ))
}

/// The method's loss on micro-batch `index` (global count): its total, its named parts, and the
/// tokens the forward passes saw.
fn micro_batch_loss<B>(
    inputs: &LoopInputs<B>,
    model: &MaskedDiffusionLm<B>,
    index: usize,
) -> (burn::tensor::Tensor<B, 1>, Vec<(String, f64)>, usize)
where
    B: AutodiffBackend + crate::kernels::KlBackend,
{
    let config = inputs.config;
    let data = inputs.data;
    let (mask, pad) = (inputs.special.mask, inputs.special.eos);
    let uses_reference = config.method.uses_reference(&config.params);
    let mut rng = SplitMix64(
        config.seed ^ 0x0F0E_0000_0000 ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let forget = noised_batch(
        &data.forget,
        &batch_rows(data.forget.len(), config.batch_size, index, config.seed),
        pad,
        mask,
        inputs.weighting,
        &mut rng,
    );
    let retain = config.method.uses_retain().then(|| {
        noised_batch(
            &data.retain,
            &batch_rows(
                data.retain.len(),
                config.batch_size,
                index,
                config.seed ^ 0x5E7A,
            ),
            pad,
            mask,
            inputs.weighting,
            &mut rng,
        )
    });
    let tokens = forget.ids.len() * if uses_reference { 2 } else { 1 }
        + retain.as_ref().map_or(0, |r| r.ids.len());
    let ctx = StepContext {
        model,
        reference: inputs.reference.filter(|_| uses_reference),
        device: inputs.device,
        mask_id: mask,
        special_ids: &inputs.special_ids,
    };
    let batches = StepBatches {
        forget: &forget,
        retain: retain.as_ref(),
    };
    let parts = config.method.loss(&ctx, &batches, &config.params);
    let named = parts
        .parts
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.into_scalar().elem::<f64>()))
        .collect();
    (parts.total, named, tokens)
}

/// Live scores over the run: the first values (for the collapse warning) and the best step.
struct LiveTracker {
    start: Option<(f64, f64)>,
    /// (retain − forget ROUGE-L, step) of the best trade-off so far.
    best: Option<(f64, usize)>,
}

impl LiveTracker {
    fn new(state: &TrainerState) -> Self {
        Self {
            start: state.live_history.first().map(|h| (h.1, h.2)),
            best: None,
        }
    }

    /// Records a live evaluation (history, metrics row, event, warnings); true when the run
    /// reached its early-stop target.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        step: usize,
        report: crate::eval::protocol::EvalReport,
        row: &mut serde_json::Value,
        config: &UnlearnConfig,
        metrics: &mut MetricsLog,
        sink: &mut dyn FnMut(Event),
        state: &mut TrainerState,
    ) -> Result<bool> {
        let (f, r) = (
            report.splits["forget"].rouge_l_recall,
            report.splits["retain"].rouge_l_recall,
        );
        state.live_history.push((step, f, r));
        let start = *self.start.get_or_insert((f, r));
        if let Some(obj) = row.as_object_mut() {
            obj.insert("live_forget_rougeL_recall".into(), f.into());
            obj.insert("live_retain_rougeL_recall".into(), r.into());
        }
        let event = Event::Eval {
            step,
            when: "step".into(),
            report,
        };
        metrics.append(&serde_json::to_value(&event)?)?;
        sink(event);
        if start.1 > 0.0 && r < config.collapse_fraction * start.1 {
            sink(Event::Warning {
                message: format!(
                    "step {step}: live retain ROUGE-L {r:.3} is below {:.0}% of its first value {:.3}; the model may be collapsing",
                    config.collapse_fraction * 100.0,
                    start.1
                ),
            });
        }
        // Best trade-off so far: retain kept minus forget left.
        if self.best.is_none_or(|(b, _)| r - f > b) {
            self.best = Some((r - f, step));
        }
        let reached = config
            .stop_at_forget_rouge
            .is_some_and(|target| f <= target);
        if reached {
            sink(Event::Warning {
                message: format!(
                    "step {step}: live forget ROUGE-L {f:.3} reached the target; stopping early"
                ),
            });
        }
        Ok(reached)
    }
}

/// The rows of global batch `index`: seeded shuffles of all examples, epoch after epoch.
fn batch_rows(n: usize, batch: usize, index: usize, seed: u64) -> Vec<usize> {
    let order = |epoch: usize| {
        let mut o: Vec<usize> = (0..n).collect();
        SplitMix64(seed ^ 0xB47C_0000 ^ epoch as u64).shuffle(&mut o);
        o
    };
    let mut cached: Option<(usize, Vec<usize>)> = None;
    (index * batch..(index + 1) * batch)
        .map(|k| {
            let epoch = k / n;
            if cached.as_ref().map(|c| c.0) != Some(epoch) {
                cached = Some((epoch, order(epoch)));
            }
            cached.as_ref().expect("set above").1[k % n]
        })
        .collect()
}

fn noised_batch(
    examples: &[SftExample],
    rows: &[usize],
    pad: u32,
    mask: u32,
    weighting: LossWeighting,
    rng: &mut SplitMix64,
) -> NoisedBatch {
    let picked: Vec<&SftExample> = rows.iter().map(|&r| &examples[r]).collect();
    let batch = SftBatch::unlearning(&picked, pad);
    NoisedBatch::sample(&batch, rng, mask, weighting)
}
