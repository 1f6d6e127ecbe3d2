//! The unlearning run: load, evaluate before, train with the chosen method (live evaluations,
//! checkpoints), evaluate after, save. It runs in whatever thread calls it, reports through a
//! sink of [`Event`]s, and checks the stop flag between steps and evaluation batches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ElementConversion;
use serde::{Deserialize, Serialize};

use super::config::UnlearnConfig;
use super::events::{Event, StopFlag};
use super::methods::{StepBatches, StepContext};
use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::data::{read_qa_file, write_atomic, QaItem};
use crate::device::{BackendTask, DeviceChoice, EngineBackend};
use crate::diffusion::batch::{SftBatch, SftExample};
use crate::diffusion::loss::{LossWeighting, NoisedBatch};
use crate::eval::cache;
use crate::eval::protocol::{
    evaluate, EvalError, EvalReport, EvalSettings, EvalSplit, SampleDetail, SplitRole,
};
use crate::model::MaskedDiffusionLm;
use crate::rng::SplitMix64;
use crate::tokenizer::TextTokenizer;
use crate::train::clip::{clip_global_norm, global_grad_norm};

/// Where a run's inputs are, once the demo (if asked for) is unpacked.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub checkpoint: PathBuf,
    pub forget: PathBuf,
    pub retain: PathBuf,
    pub eval_retain: Option<PathBuf>,
    pub eval_files: Vec<PathBuf>,
    pub retain_model: Option<PathBuf>,
}

impl Inputs {
    pub fn resolve(config: &UnlearnConfig) -> Result<Self> {
        if config.demo {
            let demo = crate::demo::embedded::unpack()?;
            return Ok(Self {
                checkpoint: config.checkpoint.clone().unwrap_or(demo.model),
                forget: config.forget.clone().unwrap_or(demo.forget),
                retain: config.retain.clone().unwrap_or(demo.retain),
                eval_retain: config.eval_retain.clone().or(Some(demo.retain_eval)),
                eval_files: if config.eval_files.is_empty() {
                    vec![demo.real_people_eval, demo.world_facts_eval]
                } else {
                    config.eval_files.clone()
                },
                retain_model: config.retain_model.clone().or(Some(demo.retain_model)),
            });
        }
        let need = |p: &Option<PathBuf>, what: &str| {
            p.clone().with_context(|| {
                format!("no {what}: pass --{what} (or --demo for the embedded demo)")
            })
        };
        Ok(Self {
            checkpoint: need(&config.checkpoint, "checkpoint")?,
            forget: need(&config.forget, "forget")?,
            retain: need(&config.retain, "retain")?,
            eval_retain: config.eval_retain.clone(),
            eval_files: config.eval_files.clone(),
            retain_model: config.retain_model.clone(),
        })
    }
}

/// Progress saved with each checkpoint; `--resume` continues from the newest.
#[derive(Serialize, Deserialize)]
struct TrainerState {
    step: usize,
    live_history: Vec<(usize, f64, f64)>,
}

/// Runs a whole unlearning on the device `config.device` names. A backend that panics (a failed
/// GPU allocation or kernel compile inside CubeCL) ends the run like any error: a `Failed` event
/// and the error returned, nothing unwinding through the caller.
pub fn run(
    config: UnlearnConfig,
    run_dir: PathBuf,
    resume: bool,
    sink: &mut dyn FnMut(Event),
    stop: &StopFlag,
) -> Result<()> {
    let result = crate::kernel_runtime::catch(|| {
        let choice = DeviceChoice::parse(&config.device).map_err(anyhow::Error::msg)?;
        choice.run(RunTask {
            device_name: choice.to_string(),
            config,
            run_dir: run_dir.clone(),
            resume,
            sink: &mut *sink,
            stop: stop.clone(),
        })
    })
    .unwrap_or_else(|panic| Err(anyhow::anyhow!("the compute backend failed: {panic}")));
    if let Err(e) = &result {
        if e.downcast_ref::<Stopped>().is_none() {
            sink(Event::Failed {
                error: format!("{e:#}"),
            });
        }
    }
    result
}

/// Kernel preparation on the run's device (compilations, autotune runs), reported to `send` as
/// [`Event::Kernels`] while the returned guard lives. `device` is the run's device setting.
pub fn kernel_events(
    device: &str,
    send: impl Fn(Event) + Send + Sync + 'static,
) -> crate::kernel_runtime::Listening {
    let label = DeviceChoice::parse(device)
        .map(|d| d.to_string())
        .unwrap_or_default();
    crate::kernel_runtime::listen(move |activity| {
        send(Event::Kernels {
            compiled: activity.compiled,
            tuned: activity.tuned,
            message: crate::kernel_runtime::activity::describe(&activity, &label),
        })
    })
}

/// Spawns the engine on a worker thread; events arrive on the returned channel.
pub fn spawn(
    config: UnlearnConfig,
    run_dir: PathBuf,
    resume: bool,
) -> (
    std::sync::mpsc::Receiver<Event>,
    StopFlag,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = StopFlag::new();
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("mdu-engine".into())
        .spawn(move || {
            let kernels = {
                let tx = std::sync::Mutex::new(tx.clone());
                kernel_events(&config.device, move |e| {
                    let _ = tx.lock().map(|tx| tx.send(e));
                })
            };
            let mut sink = |e: Event| {
                let _ = tx.send(e);
            };
            // Failures reach the channel as a Failed event.
            let _ = run(config, run_dir, resume, &mut sink, &flag);
            drop(kernels);
        })
        .expect("spawn the engine thread");
    (rx, stop, handle)
}

/// The error a stopped run returns (the `Stopped` event has been sent already).
#[derive(Debug, thiserror::Error)]
#[error("stopped by request")]
pub struct Stopped;

struct RunTask<'a> {
    config: UnlearnConfig,
    run_dir: PathBuf,
    resume: bool,
    device_name: String,
    sink: &'a mut dyn FnMut(Event),
    stop: StopFlag,
}

impl BackendTask for RunTask<'_> {
    type Output = Result<()>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Result<()> {
        train::<Autodiff<B>>(self, device)
    }
}

struct Data {
    forget: Vec<SftExample>,
    retain: Vec<SftExample>,
    splits: Vec<EvalSplit>,
}

fn load_data(inputs: &Inputs, config: &UnlearnConfig, tokenizer: &TextTokenizer) -> Result<Data> {
    let forget_items = read_qa_file(&inputs.forget)?;
    if forget_items.is_empty() {
        bail!(
            "{}: the forget set is empty; nothing to unlearn",
            inputs.forget.display()
        );
    }
    let retain_items = read_qa_file(&inputs.retain)?;
    if retain_items.is_empty() && config.method.uses_retain() {
        bail!(
            "{}: the retain set is empty, and {} needs retain data",
            inputs.retain.display(),
            config.method.label()
        );
    }
    let encode = |items: &[QaItem], file: &Path| -> Result<Vec<SftExample>> {
        items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                SftExample::encode(tokenizer, it)
                    .with_context(|| format!("{}: item {}", file.display(), i + 1))
            })
            .collect()
    };
    let forget = encode(&forget_items, &inputs.forget)?;
    let retain = encode(&retain_items, &inputs.retain)?;
    let retain_eval = match &inputs.eval_retain {
        Some(p) => read_qa_file(p)?,
        None => evenly_spaced(&retain_items, config.eval_retain_items),
    };
    let mut splits = vec![
        EvalSplit {
            name: "forget".into(),
            role: SplitRole::Forget,
            items: forget_items,
        },
        EvalSplit {
            name: "retain".into(),
            role: SplitRole::Retain,
            items: retain_eval,
        },
    ];
    for file in &inputs.eval_files {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("eval")
            .to_string();
        splits.push(EvalSplit {
            role: SplitRole::guess(&name),
            name,
            items: read_qa_file(file)?,
        });
    }
    Ok(Data {
        forget,
        retain,
        splits,
    })
}

/// `n` items spread evenly over `items` (TOFU evaluates a retain subset of the forget set's size).
pub fn evenly_spaced(items: &[QaItem], n: usize) -> Vec<QaItem> {
    if n >= items.len() {
        return items.to_vec();
    }
    (0..n).map(|i| items[i * items.len() / n].clone()).collect()
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

fn train<B: AutodiffBackend + crate::kernels::KlBackend>(
    task: RunTask,
    device: &B::Device,
) -> Result<()> {
    let RunTask {
        config,
        run_dir,
        resume,
        device_name,
        sink,
        stop,
    } = task;
    let started = Instant::now();
    let stopped = |sink: &mut dyn FnMut(Event), step: usize| -> anyhow::Error {
        sink(Event::Stopped {
            step,
            run_dir: run_dir.clone(),
        });
        Stopped.into()
    };
    sink(Event::Phase {
        phase: "loading".into(),
    });
    let inputs = Inputs::resolve(&config)?;
    prepare_run_dir(&run_dir, &inputs, resume)?;
    let ckpt = Checkpoint::open(&inputs.checkpoint)?;
    let tokenizer = TextTokenizer::from_dir(&inputs.checkpoint, &ckpt.config)
        .with_context(|| format!("{}: tokenizer", inputs.checkpoint.display()))?;
    if tokenizer.vocab_size() > ckpt.config.vocab_size {
        bail!(
            "{}: the tokenizer has {} tokens but the model's embedding has {} rows; they do not belong together",
            inputs.checkpoint.display(),
            tokenizer.vocab_size(),
            ckpt.config.vocab_size
        );
    }
    let data = load_data(&inputs, &config, &tokenizer)?;
    if stop.is_set() {
        return Err(stopped(sink, 0));
    }
    let budget = DeviceChoice::parse(&config.device)
        .map_err(anyhow::Error::msg)?
        .memory_budget();
    let mut model: MaskedDiffusionLm<B> =
        match ckpt.load_until::<B>(device, &budget, &|| stop.is_set()) {
            Err(CheckpointError::Stopped) => return Err(stopped(sink, 0)),
            loaded => loaded?,
        };
    let reference = model.valid();
    let storage = crate::device::storage_precision::<B>(device);
    write_resolved_config(&run_dir, &config, &inputs, &ckpt, &device_name, storage)?;
    sink(Event::Loaded {
        architecture: ckpt.config.architecture.name().into(),
        parameters: ckpt.config.num_parameters(),
        device: device_name.clone(),
        forget_items: data.forget.len(),
        retain_items: data.retain.len(),
        run_dir: run_dir.clone(),
    });

    let stop_check = || stop.is_set();
    let full = EvalSettings {
        generation: config.generation.clone(),
        max_items: config.eval_max_items,
        tofu: config.eval_tofu,
        ..EvalSettings::full(config.eval_mc_samples)
    };
    let live = EvalSettings {
        generation: config.generation.clone(),
        ..EvalSettings::live(config.live_mc_samples, config.live_items)
    };
    let live_splits: Vec<EvalSplit> = data
        .splits
        .iter()
        .filter(|s| matches!(s.role, SplitRole::Forget | SplitRole::Retain))
        .cloned()
        .collect();
    let split_key: Vec<(&String, SplitRole, &Vec<QaItem>)> = data
        .splits
        .iter()
        .map(|s| (&s.name, s.role, &s.items))
        .collect();
    let retain_model_tr = match (
        &inputs.retain_model,
        config.eval_tofu && (config.eval_before || config.eval_after),
    ) {
        (Some(dir), true) => {
            let key = cache::key(dir, &[&split_key[0], &full, &device_name]);
            match key
                .as_ref()
                .and_then(|k| cache::load::<Vec<f64>>("retain-model-tr", k))
            {
                Some((tr, source)) => {
                    sink(Event::Phase {
                        phase: format!("retain-only model's truth ratios: {source}"),
                    });
                    Some(tr)
                }
                None => {
                    sink(Event::Phase {
                        phase: "scoring the retain-only model".into(),
                    });
                    let tr = retain_model_truth_ratios::<B::InnerBackend>(
                        dir,
                        &data.splits[0],
                        &full,
                        &budget,
                        device,
                        &stop_check,
                    )?;
                    if let Some(k) = &key {
                        cache::store("retain-model-tr", k, &tr);
                    }
                    Some(tr)
                }
            }
        }
        _ => None,
    };
    let evaluate_full =
        |model: &MaskedDiffusionLm<B::InnerBackend>| -> Result<EvalReport, EvalError> {
            let mut report = evaluate(model, &tokenizer, &data.splits, &full, device, &stop_check)?;
            if let (Some(theirs), Some(ours)) = (&retain_model_tr, report.forget_truth_ratios()) {
                report.forget_quality = crate::eval::protocol::forget_quality(&ours, theirs);
            }
            Ok(report)
        };
    let mut summary = serde_json::Map::new();
    let mut metrics_rows: Vec<serde_json::Value> = Vec::new();
    let mut state = TrainerState {
        step: 0,
        live_history: Vec::new(),
    };
    let mut optim =
        crate::train::adamw(config.weight_decay as f32).init::<B, MaskedDiffusionLm<B>>();
    if resume {
        if let Some((dir, saved)) =
            crate::train::resume::latest(&run_dir, |s: &TrainerState| s.step)?
        {
            (model, optim) = crate::train::resume::load(&dir, model, optim, device)?;
            state = saved;
            if let Ok(text) = std::fs::read_to_string(run_dir.join("summary_before.json")) {
                summary.insert("before".into(), serde_json::from_str(&text)?);
            }
        }
    }

    if config.eval_before && !summary.contains_key("before") {
        let key = cache::key(
            &inputs.checkpoint,
            &[&split_key, &full, &device_name, &retain_model_tr],
        );
        let report = match key.as_ref().and_then(|k| {
            cache::load::<(EvalReport, BTreeMap<String, Vec<SampleDetail>>)>("before", k)
        }) {
            Some(((mut report, samples), source)) => {
                sink(Event::Phase {
                    phase: format!("evaluating (before): {source}"),
                });
                report.samples = samples;
                report
            }
            None => {
                sink(Event::Phase {
                    phase: "evaluating (before)".into(),
                });
                let report =
                    evaluate_full(&reference).map_err(|e| eval_error(e, sink, &run_dir))?;
                if let Some(k) = &key {
                    cache::store("before", k, &(&report, &report.samples));
                }
                report
            }
        };
        record_full_eval(&run_dir, "before", 0, &report, sink)?;
        let value = serde_json::to_value(&report)?;
        write_atomic(
            &run_dir.join("summary_before.json"),
            serde_json::to_string_pretty(&value)?.as_bytes(),
        )?;
        summary.insert("before".into(), value);
    }

    sink(Event::Phase {
        phase: "training".into(),
    });
    let special = &tokenizer.special;
    let (mask, pad) = (special.mask, special.eos);
    let special_ids = special.all();
    let weighting = LossWeighting::for_architecture(ckpt.config.architecture);
    let uses_reference = config.method.uses_reference(&config.params);
    let micro = config.grad_accum.max(1);
    let mut metrics_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join("metrics.jsonl"))?;
    let mut live_start: Option<(f64, f64)> = state.live_history.first().map(|h| (h.1, h.2));
    let mut best: Option<(f64, usize)> = None;
    let mut last_tick = Instant::now();
    let mut step = state.step;
    while step < config.steps {
        if stop.is_set() {
            save_trainer_checkpoint(
                &run_dir, &model, &optim, &ckpt, &inputs, &state, step, false,
            )?;
            write_csv(&run_dir, &metrics_rows)?;
            return Err(stopped(sink, step));
        }
        let lr = config.lr_at(step);
        let mut grads_total: Option<GradientsParams> = None;
        let mut parts_sum: BTreeMap<String, f64> = BTreeMap::new();
        let mut loss_sum = 0.0;
        let mut tokens = 0usize;
        for m in 0..micro {
            let index = step * micro + m;
            let mut rng = SplitMix64(
                config.seed ^ 0x0F0E_0000_0000 ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let forget = noised_batch(
                &data.forget,
                &batch_rows(data.forget.len(), config.batch_size, index, config.seed),
                pad,
                mask,
                weighting,
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
                    weighting,
                    &mut rng,
                )
            });
            tokens += forget.ids.len() * if uses_reference { 2 } else { 1 }
                + retain.as_ref().map_or(0, |r| r.ids.len());
            let ctx = StepContext {
                model: &model,
                reference: uses_reference.then_some(&reference),
                device,
                mask_id: mask,
                special_ids: &special_ids,
            };
            let batches = StepBatches {
                forget: &forget,
                retain: retain.as_ref(),
            };
            let parts = config.method.loss(&ctx, &batches, &config.params);
            for (name, value) in parts.parts {
                *parts_sum.entry(name.to_string()).or_default() +=
                    value.into_scalar().elem::<f64>() / micro as f64;
            }
            let total = parts.total / micro as f32;
            loss_sum += total.clone().into_scalar().elem::<f64>();
            let grads = GradientsParams::from_grads(total.backward(), &model);
            grads_total = Some(match grads_total {
                None => grads,
                Some(acc) => crate::train::accumulate_grads(&model, acc, grads),
            });
        }
        if !loss_sum.is_finite() {
            save_trainer_checkpoint(
                &run_dir, &model, &optim, &ckpt, &inputs, &state, step, false,
            )?;
            bail!(
                "step {}: the loss is {loss_sum} (not finite); the run stopped and kept the last good state (checkpoint-{step}). Lower the learning rate",
                step + 1
            );
        }
        let mut grads = grads_total.expect("at least one micro-batch");
        let grad_norm = if config.max_grad_norm > 0.0 {
            clip_global_norm::<B, _>(&model, &mut grads, config.max_grad_norm)
        } else {
            global_grad_norm::<B, _>(&model, &grads)
        };
        model = optim.step(lr, model, grads);
        step += 1;
        state.step = step;
        let elapsed = last_tick.elapsed().as_secs_f64();
        last_tick = Instant::now();
        let event = Event::Step {
            step,
            steps: config.steps,
            loss: loss_sum,
            parts: parts_sum.clone(),
            lr,
            grad_norm,
            tokens_per_s: tokens as f64 / elapsed.max(1e-9),
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        let mut row = serde_json::to_value(&event)?;
        append_line(&mut metrics_file, &row)?;
        sink(event);

        let live_now =
            config.live_every > 0 && (step % config.live_every == 0 || step == config.steps);
        if live_now {
            let inner = model.valid();
            let report =
                match evaluate(&inner, &tokenizer, &live_splits, &live, device, &stop_check) {
                    Ok(r) => r,
                    Err(EvalError::Stopped) => continue,
                    Err(e) => return Err(e.into()),
                };
            let (f, r) = (
                report.splits["forget"].rouge_l_recall,
                report.splits["retain"].rouge_l_recall,
            );
            state.live_history.push((step, f, r));
            let start = *live_start.get_or_insert((f, r));
            if let Some(obj) = row.as_object_mut() {
                obj.insert("live_forget_rougeL_recall".into(), f.into());
                obj.insert("live_retain_rougeL_recall".into(), r.into());
            }
            let event = Event::Eval {
                step,
                when: "step".into(),
                report,
            };
            append_line(&mut metrics_file, &serde_json::to_value(&event)?)?;
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
            if best.is_none_or(|(b, _)| r - f > b) {
                best = Some((r - f, step));
            }
            if config
                .stop_at_forget_rouge
                .is_some_and(|target| f <= target)
            {
                sink(Event::Warning { message: format!("step {step}: live forget ROUGE-L {f:.3} reached the target; stopping early") });
                metrics_rows.push(row);
                break;
            }
        }
        metrics_rows.push(row);
        if config.save_every > 0 && step % config.save_every == 0 && step < config.steps {
            let is_best = best.is_some_and(|(_, s)| s == step);
            let path = save_trainer_checkpoint(
                &run_dir, &model, &optim, &ckpt, &inputs, &state, step, is_best,
            )?;
            sink(Event::Checkpoint {
                step,
                path,
                best: is_best,
            });
        }
    }
    write_csv(&run_dir, &metrics_rows)?;

    let inner = model.valid();
    if config.eval_after {
        sink(Event::Phase {
            phase: "evaluating (after)".into(),
        });
        let report = evaluate_full(&inner).map_err(|e| eval_error(e, sink, &run_dir))?;
        record_full_eval(&run_dir, "after", step, &report, sink)?;
        summary.insert("after".into(), serde_json::to_value(&report)?);
    }
    sink(Event::Phase {
        phase: "saving".into(),
    });
    let model_dir = run_dir.join("model");
    if model_dir.exists() {
        std::fs::remove_dir_all(&model_dir)?;
    }
    checkpoint::save(&inner, &ckpt.layout, Some(&inputs.checkpoint), &model_dir)?;
    summary.insert("method".into(), config.method.name().into());
    summary.insert("params".into(), serde_json::to_value(&config.params)?);
    summary.insert("steps".into(), step.into());
    summary.insert("seed".into(), config.seed.into());
    summary.insert("wall_s".into(), started.elapsed().as_secs_f64().into());
    summary.insert("protocols".into(), crate::eval::report::protocol_legend());
    let summary = serde_json::Value::Object(summary);
    write_atomic(
        &run_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    sink(Event::Finished {
        run_dir: run_dir.clone(),
        model_dir,
        summary,
    });
    Ok(())
}

fn eval_error(e: EvalError, sink: &mut dyn FnMut(Event), run_dir: &Path) -> anyhow::Error {
    match e {
        EvalError::Stopped => {
            sink(Event::Stopped {
                step: 0,
                run_dir: run_dir.to_path_buf(),
            });
            Stopped.into()
        }
        other => other.into(),
    }
}

fn record_full_eval(
    run_dir: &Path,
    when: &str,
    step: usize,
    report: &EvalReport,
    sink: &mut dyn FnMut(Event),
) -> Result<()> {
    for (split, samples) in &report.samples {
        sink(Event::Samples {
            step,
            when: when.into(),
            split: split.clone(),
            samples: samples.clone(),
        });
    }
    write_atomic(
        &run_dir.join(format!("samples_{when}.jsonl")),
        report.details_jsonl().as_bytes(),
    )?;
    sink(Event::Eval {
        step,
        when: when.into(),
        report: report.clone(),
    });
    Ok(())
}

/// The retain-only model's raw TOFU truth ratios on the forget split (computed once per run).
fn retain_model_truth_ratios<B: Backend>(
    dir: &Path,
    forget: &EvalSplit,
    settings: &EvalSettings,
    budget: &checkpoint::MemoryBudget,
    device: &B::Device,
    stop: crate::eval::protocol::StopCheck,
) -> Result<Vec<f64>> {
    crate::eval::protocol::retain_model_truth_ratios::<B>(
        dir,
        &forget.items,
        settings,
        budget,
        device,
        stop,
    )?
    .with_context(|| {
        format!(
            "{}: forget items need perturbed answers for forget quality",
            dir.display()
        )
    })
}

fn prepare_run_dir(run_dir: &Path, inputs: &Inputs, resume: bool) -> Result<()> {
    if let Ok(canon) = run_dir.canonicalize() {
        if inputs
            .checkpoint
            .canonicalize()
            .is_ok_and(|c| canon.starts_with(&c))
        {
            bail!(
                "{}: the run directory is inside the input checkpoint; choose another folder",
                run_dir.display()
            );
        }
    }
    if run_dir.exists() && !resume {
        let non_empty = std::fs::read_dir(run_dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
        if non_empty {
            bail!(
                "{}: the run directory exists and is not empty; choose a new one, or pass --resume",
                run_dir.display()
            );
        }
    }
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("{}: cannot create the run directory", run_dir.display()))?;
    let probe = run_dir.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("{}: the run directory is not writable", run_dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// `config.toml` (loadable with `--config`, used by `--resume`) and `run_info.json` (what the
/// config resolved to on this machine: inputs, device, dtype, versions).
fn write_resolved_config(
    run_dir: &Path,
    config: &UnlearnConfig,
    inputs: &Inputs,
    ckpt: &Checkpoint,
    device: &str,
    storage: crate::device::Precision,
) -> Result<()> {
    write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
    let info = serde_json::json!({
        "checkpoint": inputs.checkpoint,
        "forget": inputs.forget,
        "retain": inputs.retain,
        "eval_retain": inputs.eval_retain,
        "eval_files": inputs.eval_files,
        "retain_model": inputs.retain_model,
        "architecture": ckpt.config.architecture.name(),
        "parameters": ckpt.config.num_parameters(),
        "device": device,
        "checkpoint_dtype": ckpt.layout.main_dtype().name(),
        // Weights and activations; softmax, KL, losses and AdamW moments are f32 regardless.
        "storage_dtype": storage.name(),
        "accumulation_dtype": "f32",
        "seed": config.seed,
        "mdu_workbench": env!("CARGO_PKG_VERSION"),
        "burn": "0.21.0",
    });
    write_atomic(
        &run_dir.join("run_info.json"),
        serde_json::to_string_pretty(&info)?.as_bytes(),
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn save_trainer_checkpoint<B: AutodiffBackend, O: Optimizer<MaskedDiffusionLm<B>, B>>(
    run_dir: &Path,
    model: &MaskedDiffusionLm<B>,
    optim: &O,
    ckpt: &Checkpoint,
    inputs: &Inputs,
    state: &TrainerState,
    step: usize,
    best: bool,
) -> Result<PathBuf> {
    let dir = run_dir.join(format!("checkpoint-{step}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    checkpoint::save(&model.valid(), &ckpt.layout, Some(&inputs.checkpoint), &dir)?;
    crate::train::resume::save(&dir, model, optim, state)?;
    if best {
        write_atomic(&run_dir.join("best_checkpoint.json"), serde_json::json!({"step": step, "path": dir, "criterion": "highest live retain minus forget ROUGE-L recall"}).to_string().as_bytes())?;
    }
    Ok(dir)
}

fn append_line(file: &mut std::fs::File, value: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    writeln!(file, "{value}")?;
    Ok(())
}

/// `metrics.csv`: one row per step, loss parts and live scores as columns.
fn write_csv(run_dir: &Path, rows: &[serde_json::Value]) -> Result<()> {
    let mut part_names: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get("parts").and_then(|p| p.as_object()))
        .flat_map(|p| p.keys().cloned())
        .collect();
    part_names.sort();
    part_names.dedup();
    let mut out = String::from("step,loss");
    for p in &part_names {
        out.push_str(&format!(",loss_{p}"));
    }
    out.push_str(",lr,grad_norm,tokens_per_s,elapsed_s,live_forget_rougeL_recall,live_retain_rougeL_recall\n");
    let num = |r: &serde_json::Value, k: &str| {
        r.get(k)
            .and_then(|v| v.as_f64())
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    for r in rows {
        out.push_str(&format!("{},{}", num(r, "step"), num(r, "loss")));
        for p in &part_names {
            let v = r
                .get("parts")
                .and_then(|x| x.get(p))
                .and_then(|v| v.as_f64())
                .map(|v| v.to_string())
                .unwrap_or_default();
            out.push_str(&format!(",{v}"));
        }
        for k in [
            "lr",
            "grad_norm",
            "tokens_per_s",
            "elapsed_s",
            "live_forget_rougeL_recall",
            "live_retain_rougeL_recall",
        ] {
            out.push_str(&format!(",{}", num(r, k)));
        }
        out.push('\n');
    }
    write_atomic(&run_dir.join("metrics.csv"), out.as_bytes())?;
    Ok(())
}
