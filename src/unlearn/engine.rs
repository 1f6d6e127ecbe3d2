//! The unlearning run: load, evaluate before, train with the chosen method (live evaluations,
//! checkpoints), evaluate after, save. It runs in whatever thread calls it, reports through a
//! sink of [`Event`]s, and checks the stop flag between steps and evaluation batches. The parts
//! live beside it: [`super::inputs`] (what is read), [`super::run_dir`] (what is written),
//! [`super::evaluation`] and [`super::step_loop`].

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use super::config::{MomentPrecision, UnlearnConfig};
use super::evaluation::Evaluation;
use super::inputs::{Data, ResolvedRun};
use super::memory_plan::{MemoryPlan, PlanInputs};
use super::privacy::RunAudit;
use super::run_dir::{MetricsLog, RunDir, RunInfo, RunSummary};
use super::step_loop::{CheckpointSaver, LoopInputs, TrainerState, Training};
pub use super::Stopped;
use crate::checkpoint::{CheckpointError, MemoryBudget, ModelFiles};
use crate::device::{BackendTask, DeviceChoice, EngineBackend};
use crate::diffusion::loss::LossWeighting;
use crate::eval::protocol::EvalReport;
use crate::events::{Event, StopFlag};
use crate::model::MaskedDiffusionLm;

/// Runs a whole unlearning of `config` (resolved by [`ResolvedRun::new`]). A backend that panics
/// (a failed GPU allocation or kernel compile inside CubeCL) ends the run like any error: a
/// `Failed` event and the error returned, nothing unwinding through the caller.
pub fn run(
    config: UnlearnConfig,
    run_dir: PathBuf,
    resume: bool,
    sink: &mut dyn FnMut(Event),
    stop: &StopFlag,
) -> Result<()> {
    match ResolvedRun::new(config, run_dir, resume) {
        Ok(resolved) => run_resolved(resolved, sink, stop),
        Err(e) => {
            sink(Event::Failed {
                error: crate::events::error_message(&e),
            });
            Err(e)
        }
    }
}

/// Runs a resolved unlearning; see [`run`].
pub fn run_resolved(run: ResolvedRun, sink: &mut dyn FnMut(Event), stop: &StopFlag) -> Result<()> {
    let result = crate::kernel_runtime::catch(|| {
        let device = run.device.clone();
        device.run(RunTask {
            run,
            sink: &mut *sink,
            stop: stop.clone(),
        })
    })
    .unwrap_or_else(|panic| Err(anyhow::anyhow!("the compute backend failed: {panic}")));
    if let Err(e) = &result {
        if e.downcast_ref::<Stopped>().is_none() {
            sink(Event::Failed {
                error: crate::events::error_message(&e),
            });
        }
    }
    result
}

/// Kernel preparation on the run's device (compilations, autotune runs), reported to `send` as
/// [`Event::Kernels`] while the returned guard lives.
pub fn kernel_events(
    device: &DeviceChoice,
    send: impl Fn(Event) + Send + Sync + 'static,
) -> crate::kernel_runtime::Listening {
    let label = device.to_string();
    crate::kernel_runtime::listen(move |activity| {
        send(Event::Kernels {
            compiled: activity.compiled,
            tuned: activity.tuned,
            message: crate::kernel_runtime::activity::describe(&activity, &label),
        })
    })
}

/// Spawns the engine on a worker thread; events (kernel preparation among them) arrive on the
/// returned channel.
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
    let handle =
        spawn_reporting(config, run_dir, resume, tx, &stop).expect("spawn the engine thread");
    (rx, stop, handle)
}

/// [`run_reporting`] on a new thread named `mdu-engine` (the CLI, the engine session and
/// [`spawn`] all start runs here).
pub fn spawn_reporting(
    config: UnlearnConfig,
    run_dir: PathBuf,
    resume: bool,
    events: std::sync::mpsc::Sender<Event>,
    stop: &StopFlag,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let stop = stop.clone();
    std::thread::Builder::new()
        .name("mdu-engine".into())
        .spawn(move || run_reporting(config, run_dir, resume, events, &stop))
}

/// Resolves and runs an unlearning, every event (kernel preparation among them, a failure as
/// [`Event::Failed`]) sent to `events`. What a worker thread calls.
pub fn run_reporting(
    config: UnlearnConfig,
    run_dir: PathBuf,
    resume: bool,
    events: std::sync::mpsc::Sender<Event>,
    stop: &StopFlag,
) {
    let tx = events.clone();
    let mut sink = |e: Event| {
        let _ = tx.send(e);
    };
    match ResolvedRun::new(config, run_dir, resume) {
        Ok(run) => run_with_kernel_events(run, &mut sink, stop, events),
        Err(e) => sink(Event::Failed {
            error: crate::events::error_message(&e),
        }),
    }
}

/// Runs `run`, its kernel preparation reported on `events` beside the run's own events.
pub fn run_with_kernel_events(
    run: ResolvedRun,
    sink: &mut dyn FnMut(Event),
    stop: &StopFlag,
    events: std::sync::mpsc::Sender<Event>,
) {
    let kernels = {
        let tx = std::sync::Mutex::new(events);
        kernel_events(&run.device, move |e| {
            let _ = tx.lock().map(|tx| tx.send(e));
        })
    };
    // Failures reach the sink as a Failed event.
    let _ = run_resolved(run, sink, stop);
    drop(kernels);
}

struct RunTask<'a> {
    run: ResolvedRun,
    sink: &'a mut dyn FnMut(Event),
    stop: StopFlag,
}

impl BackendTask for RunTask<'_> {
    type Output = Result<()>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Result<()> {
        train::<Autodiff<B>>(self, device)
    }
}

/// What a run has once its inputs are read and its model is on the device.
struct Loaded<B: AutodiffBackend> {
    run_dir: RunDir,
    files: ModelFiles,
    data: Data,
    model: MaskedDiffusionLm<B>,
    budget: MemoryBudget,
    /// Per-block activation checkpointing, as resolved against the free memory.
    checkpointing: bool,
}

/// Prepares the run folder, reads the model folder and data, loads the model (a stop request is
/// answered between tensors) and records the resolved config; sends `Loaded`.
fn load<B: AutodiffBackend>(
    run: &ResolvedRun,
    device: &B::Device,
    sink: &mut dyn FnMut(Event),
    stop: &StopFlag,
) -> Result<Loaded<B>> {
    let stopped = |sink: &mut dyn FnMut(Event)| -> anyhow::Error {
        sink(Event::Stopped {
            step: 0,
            run_dir: run.run_dir.clone(),
        });
        Stopped.into()
    };
    let (config, inputs) = (&run.config, &run.inputs);
    sink(Event::Phase {
        phase: "loading".into(),
    });
    let run_dir = RunDir::prepare(&run.run_dir, inputs, run.resume)?;
    let files = ModelFiles::open(&inputs.checkpoint)?;
    let context = files.checkpoint.config.max_position_embeddings;
    let data = Data::load(inputs, config, &files.tokenizer, context)?;
    if data.truncated > 0 {
        sink(Event::Warning {
            message: format!(
                "{} training item(s) longer than the model's {context} positions had their answers cut to fit",
                data.truncated
            ),
        });
    }
    if stop.is_set() {
        return Err(stopped(sink));
    }
    let budget = run.device.memory_budget();
    let ckpt = &files.checkpoint;
    let (checkpointing, plan) = step_plan::<B>(run, &ckpt.config, &data, device, &budget);
    if checkpointing {
        sink(Event::Warning {
            message: format!(
                "activation checkpointing is on (each block runs twice, a step takes longer): {}",
                plan.describe()
            ),
        });
    }
    if run.config.moments == MomentPrecision::Bf16
        && !crate::model::precision::stores_bf16::<B>(device)
    {
        sink(Event::Warning {
            message: format!(
                "bf16 moments: {} cannot store bf16 tensors, so the moments hold bf16 values in f32 (the same numbers, no memory saved)",
                run.device
            ),
        });
    }
    if let Some(available) = budget.available {
        if plan.total() > available {
            anyhow::bail!(
                "{}: {}",
                inputs.checkpoint.display(),
                plan.refusal(&budget.device, available, config.lora.is_some())
            );
        }
    }
    let model = match files.load_until::<B>(device, &budget, &|| stop.is_set()) {
        Err(CheckpointError::Stopped) => return Err(stopped(sink)),
        loaded => loaded?,
    };
    // LoRA: the base freezes (no gradients, no optimiser state) and only the adapters train.
    if let (Some(_), Some(adapter)) = (&config.lora, &files.adapter) {
        anyhow::bail!(
            "{}: LoRA training on top of a LoRA adapter is not supported; merge it first with `mdu convert --adapter … --merge`",
            adapter.dir.display()
        );
    }
    let model = match &config.lora {
        Some(lora) => model.with_adapters(crate::model::Adapters::init(
            lora,
            &ckpt.config,
            config.seed,
            device,
        )),
        None => model,
    };
    let device_name = run.device.to_string();
    let storage = crate::device::storage_precision::<B>(device);
    run_dir.write_resolved_config(
        config,
        &RunInfo {
            inputs,
            architecture: ckpt.config.architecture.name(),
            parameters: ckpt.config.num_parameters(),
            device: &device_name,
            checkpoint_dtype: ckpt.layout.main_dtype().name(),
            storage_dtype: storage.name(),
        },
    )?;
    sink(Event::Loaded {
        architecture: ckpt.config.architecture.name().into(),
        parameters: ckpt.config.num_parameters(),
        device: device_name,
        forget_items: data.forget.len(),
        retain_items: data.retain.len(),
        run_dir: run_dir.path.clone(),
        eval_items: data.splits.iter().map(|s| s.items.len()).collect(),
    });
    Ok(Loaded {
        run_dir,
        files,
        data,
        model,
        budget,
        checkpointing,
    })
}

/// [`load`]; a refused input leaves no empty run folder behind (`remove_dir` keeps a non-empty one).
fn load_or_tidy<B: AutodiffBackend>(
    run: &ResolvedRun,
    device: &B::Device,
    sink: &mut dyn FnMut(Event),
    stop: &StopFlag,
) -> Result<Loaded<B>> {
    let created = !run.run_dir.exists();
    let loaded = load::<B>(run, device, sink, stop);
    if let Err(e) = &loaded {
        if created && !e.is::<Stopped>() {
            let _ = std::fs::remove_dir(&run.run_dir);
        }
    }
    loaded
}

/// Writes the final model into `model/` through a staging folder: a model from an earlier
/// attempt is replaced only by a complete one.
fn save_final<B: burn::tensor::backend::Backend>(
    saver: &CheckpointSaver,
    inner: &MaskedDiffusionLm<B>,
    run_dir: &RunDir,
) -> Result<PathBuf> {
    let model_dir = run_dir.model_dir();
    let written = run_dir.replace_folder(&model_dir, |staged| saver.save_model(inner, staged));
    if let Err(e) = written {
        return Err(e.context(format!(
            "{}: saving the final model failed; the checkpoints are intact and --resume saves it again",
            model_dir.display()
        )));
    }
    Ok(model_dir)
}

/// Whether this run's steps checkpoint, and their memory plan; its longest item sets the width.
fn step_plan<B: AutodiffBackend>(
    run: &ResolvedRun,
    model: &crate::model::ModelConfig,
    data: &Data,
    device: &B::Device,
    budget: &MemoryBudget,
) -> (bool, MemoryPlan) {
    let width = data
        .forget
        .iter()
        .chain(&data.retain)
        .map(|e| e.prompt.len() + e.answer.len())
        .max()
        .unwrap_or(0);
    PlanInputs::for_run(
        &run.config,
        model,
        width,
        crate::model::precision::storage_bytes::<B>(device),
        crate::model::precision::stores_bf16::<B>(device),
        matches!(run.device, DeviceChoice::Cpu),
    )
    .resolve(run.config.checkpointing, budget.available)
}

/// Loads, evaluates before, trains, evaluates after and saves; see the module's parts.
fn train<B: AutodiffBackend + crate::kernels::KlBackend>(
    task: RunTask,
    device: &B::Device,
) -> Result<()> {
    let RunTask { run, sink, stop } = task;
    let started = Instant::now();
    let (config, inputs) = (&run.config, &run.inputs);
    let device_name = run.device.to_string();
    let Loaded {
        run_dir,
        files,
        data,
        model,
        budget,
        checkpointing,
    } = load_or_tidy::<B>(&run, device, sink, &stop)?;
    let (ckpt, tokenizer) = (&files.checkpoint, &files.tokenizer);
    // The starting model (the "before" evaluation; MDU's anchor, NPO's reference). With LoRA it is
    // the same frozen weights with the adapters off, so it costs no memory.
    let reference = model.valid().without_adapters();
    let mut eval =
        Evaluation::<B::InnerBackend>::new(config, &data, tokenizer, device, &device_name, &stop);
    eval.use_cache = run.eval_cache;
    if let Some(probed) = &run.probe_of {
        let real = Evaluation::<B::InnerBackend>::new(
            probed,
            &data,
            tokenizer,
            device,
            &device_name,
            &stop,
        );
        sink(real.reusable(inputs, probed, &inputs.checkpoint));
    }
    eval.score_retain_model(inputs, config, &budget, sink)?;
    let audit = RunAudit::new::<B>(
        &run, &data, &reference, tokenizer, &budget, device, sink, &stop,
    )?;
    let privacy_before = audit.before(&model, &run_dir, device, sink)?;
    let mut training = Training {
        model,
        optim: crate::train::adamw(config.weight_decay as f32).for_run(config.moments),
        state: TrainerState {
            step: 0,
            live_history: Vec::new(),
        },
    };
    let mut before = None;
    if run.resume {
        if let Some((dir, saved)) =
            crate::train::resume::latest(&run_dir.path, |s: &TrainerState| s.step)?
        {
            let (model, optim) =
                crate::train::resume::load(&dir, training.model, training.optim, device)?;
            training = Training {
                model,
                optim,
                state: saved,
            };
            before = run_dir.read_before()?;
        }
    }
    if config.eval_before && before.is_none() {
        before = Some(eval.before(
            &reference,
            &inputs.checkpoint,
            privacy_before,
            &run_dir,
            sink,
        )?);
    }
    // Kept only for the methods that read it (not GA or GradDiff): in full fine-tuning it holds
    // the starting weights alive beside the trained ones.
    let reference = config
        .method
        .uses_reference(&config.params)
        .then_some(reference);

    sink(Event::Phase {
        phase: "training".into(),
    });
    let loop_inputs = LoopInputs {
        config,
        data: &data,
        reference: reference.as_ref(),
        special: &tokenizer.special,
        special_ids: tokenizer.special.all(),
        weighting: LossWeighting::for_architecture(ckpt.config.architecture),
        device,
        run_dir: &run_dir,
        saver: CheckpointSaver {
            layout: &ckpt.layout,
            source: &ckpt.dir,
        },
        started,
        stop: &stop,
        checkpointing,
    };
    let mut metrics = MetricsLog::open(&run_dir, training.state.step)?;
    let (training, step) =
        super::step_loop::run_steps(&loop_inputs, training, &eval, &mut metrics, sink)?;

    let inner = training.model.valid();
    let after = match config.eval_after {
        true => {
            let privacy = audit.after(&training.model, &run_dir, device, sink)?;
            Some(eval.after(&inner, step, privacy, &run_dir, sink)?)
        }
        false => None,
    };
    let reports = (before, after);
    finish(&loop_inputs, &inner, reports, step, sink)
}

/// Saves the final model, then writes the summary and the open-unlearning export and sends
/// `Finished`.
fn finish<B: AutodiffBackend>(
    inputs: &LoopInputs<B>,
    model: &MaskedDiffusionLm<B::InnerBackend>,
    (before, after): (Option<EvalReport>, Option<EvalReport>),
    step: usize,
    sink: &mut dyn FnMut(Event),
) -> Result<()> {
    let (config, run_dir) = (inputs.config, inputs.run_dir);
    sink(Event::Phase {
        phase: "saving".into(),
    });
    let model_dir = save_final(&inputs.saver, model, run_dir)?;
    run_dir.write_open_unlearning(before.as_ref(), after.as_ref())?;
    let summary = serde_json::to_value(RunSummary {
        after,
        before,
        method: config.method,
        params: config.params.clone(),
        protocols: crate::eval::report::protocol_legend(),
        seed: config.seed,
        steps: step,
        wall_s: inputs.started.elapsed().as_secs_f64(),
    })?;
    run_dir.write_summary(&summary)?;
    sink(Event::Finished {
        run_dir: run_dir.path.clone(),
        model_dir,
        summary,
    });
    Ok(())
}
