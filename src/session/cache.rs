//! The session's worker: it serves commands one after another and keeps what it opened and
//! loaded. Opened model folders (config, headers, tokenizer) are kept by folder; loaded models by
//! folder and device, at most [`MAX_LOADED`] and, where the device's free memory is known, no more
//! than fits in it by the load estimate.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use super::info::ModelInfo;
use super::inside::InsideTraces;
use super::trace::{trace, Trace};
use super::{Command, KlTraceRequest, TraceRequest};
use crate::checkpoint::{estimate_bytes, MemoryBudget, ModelFiles};
use crate::device::{BackendTask, DeviceChoice, EngineBackend};
use crate::model::MaskedDiffusionLm;

/// Loaded models kept at once (the Denoising view compares two).
pub const MAX_LOADED: usize = 2;
/// Opened model folders kept at once.
const MAX_OPENED: usize = 4;

/// Serves `commands` until every [`super::Session`] handle is gone.
pub(super) fn serve(commands: Receiver<Command>) {
    let mut models = Models::default();
    for command in commands {
        models.handle(command);
    }
}

/// A model loaded on a device; `model` is a `MaskedDiffusionLm<B>` of that device's backend.
struct Loaded {
    dir: PathBuf,
    device: String,
    bytes: u64,
    model: Box<dyn Any>,
}

#[derive(Default)]
struct Models {
    /// Oldest first.
    opened: Vec<ModelFiles>,
    /// Least recently used first.
    loaded: Vec<Loaded>,
}

impl Models {
    fn handle(&mut self, command: Command) {
        match command {
            Command::OpenModel(dir, reply) => {
                // Asked for explicitly: read again (the folder may have changed on disk).
                self.forget(&dir);
                let info = self.files(&dir).map(ModelInfo::of);
                let _ = reply.send(info);
            }
            Command::Trace(request, reply) => {
                let _ = reply.send(self.trace(&request));
            }
            Command::KlTrace(request, reply) => {
                let _ = reply.send(self.kl_trace(&request));
            }
            Command::Unlearn {
                config,
                run_dir,
                resume,
                events,
                stop,
            } => {
                // Training needs the memory the kept models hold.
                self.loaded.clear();
                let failed = events.clone();
                let spawned =
                    crate::unlearn::engine::spawn_reporting(config, run_dir, resume, events, &stop);
                if let Err(e) = spawned {
                    let _ = failed.send(crate::events::Event::Failed {
                        error: format!("cannot start the engine thread: {e}"),
                    });
                }
            }
            Command::EstimateCost(config, reply) => {
                // The probe loads the model too: free what is kept, as a run does.
                self.loaded.clear();
                let spawned = std::thread::Builder::new()
                    .name("mdu-cost-probe".into())
                    .spawn(move || {
                        let stop = crate::events::StopFlag::new();
                        let estimate = crate::unlearn::cost::estimate(&config, &stop)
                            .map_err(|e| format!("{e:#}"));
                        let _ = reply.send(estimate);
                    });
                if let Err(e) = spawned {
                    log::warn!("cannot start the cost probe: {e}");
                }
            }
        }
    }

    fn forget(&mut self, dir: &Path) {
        self.opened.retain(|f| f.dir != dir);
        self.loaded.retain(|l| l.dir != dir);
    }

    /// The opened folder `dir`, opening it when it is not kept.
    fn files(&mut self, dir: &Path) -> Result<&ModelFiles, String> {
        if let Some(i) = self.opened.iter().position(|f| f.dir == dir) {
            return Ok(&self.opened[i]);
        }
        let files = ModelFiles::open(dir).map_err(|e| crate::events::error_message(&e))?;
        if self.opened.len() >= MAX_OPENED {
            self.opened.remove(0);
        }
        self.opened.push(files);
        Ok(self.opened.last().expect("just pushed"))
    }

    fn trace(&mut self, request: &TraceRequest) -> Result<Trace, String> {
        let device = DeviceChoice::parse(&request.device)?;
        self.files(&request.model_dir)?;
        let task = TraceTask {
            models: self,
            request,
            device_name: device.to_string(),
            budget: device.memory_budget(),
        };
        run_caught(&device, task)
    }
}

impl Models {
    fn kl_trace(&mut self, request: &KlTraceRequest) -> Result<InsideTraces, String> {
        let device = DeviceChoice::parse(&request.device)?;
        self.files(&request.start_dir)?;
        if let Some(dir) = &request.unlearned_dir {
            self.files(dir)?;
        }
        let task = KlTraceTask {
            models: self,
            request,
            device_name: device.to_string(),
            budget: device.memory_budget(),
        };
        run_caught(&device, task)
    }
}

/// Runs `task` on `device`; a panic of the compute backend comes back as an error.
fn run_caught<R, T: BackendTask<Output = Result<R, String>>>(
    device: &DeviceChoice,
    task: T,
) -> Result<R, String> {
    crate::kernel_runtime::catch(|| device.run(task))
        .unwrap_or_else(|panic| Err(format!("the compute backend failed: {panic}")))
}

struct KlTraceTask<'a> {
    models: &'a mut Models,
    request: &'a KlTraceRequest,
    device_name: String,
    budget: MemoryBudget,
}

impl BackendTask for KlTraceTask<'_> {
    type Output = Result<InsideTraces, String>;

    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output {
        let Models { opened, loaded } = self.models;
        let dirs: Vec<&PathBuf> = std::iter::once(&self.request.start_dir)
            .chain(&self.request.unlearned_dir)
            .collect();
        for dir in &dirs {
            let files = opened
                .iter()
                .find(|f| f.dir == **dir)
                .ok_or_else(|| format!("{}: the model folder is not open", dir.display()))?;
            load_kept::<B>(loaded, files, &self.device_name, &self.budget, device)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let kept = |dir: &PathBuf| {
            loaded
                .iter()
                .find(|l| l.dir == *dir && l.device == self.device_name)
                .and_then(|l| l.model.downcast_ref::<MaskedDiffusionLm<B>>())
                .ok_or_else(|| {
                    format!(
                        "{}: the starting and the unlearned model do not fit in memory together",
                        dir.display()
                    )
                })
        };
        let start = kept(&self.request.start_dir)?;
        let unlearned = match &self.request.unlearned_dir {
            Some(dir) => Some(kept(dir)?),
            None => None,
        };
        let tokenizer = &opened
            .iter()
            .find(|f| f.dir == self.request.start_dir)
            .expect("opened above")
            .tokenizer;
        super::inside::trace_pair(self.request, start, unlearned, tokenizer, device)
            .map_err(|e| crate::events::error_message(&e))
    }
}

struct TraceTask<'a> {
    models: &'a mut Models,
    request: &'a TraceRequest,
    device_name: String,
    budget: MemoryBudget,
}

impl BackendTask for TraceTask<'_> {
    type Output = Result<Trace, String>;

    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output {
        let dir = &self.request.model_dir;
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", dir.display());
        let Models { opened, loaded } = self.models;
        let files = opened
            .iter()
            .find(|f| f.dir == *dir)
            .ok_or_else(|| err(&"the model folder is not open"))?;
        let model = load_kept::<B>(loaded, files, &self.device_name, &self.budget, device)
            .map_err(|e| err(&e))?;
        trace(
            model,
            &files.tokenizer,
            &self.request.item,
            self.request.free_tokens,
            device,
        )
        .map_err(|e| err(&crate::events::error_message(&e)))
    }
}

/// The model of `files` on `device_name`, loaded now unless kept; loading first lets go of the
/// least recently used models until the new one fits beside the others.
fn load_kept<'a, B: EngineBackend>(
    loaded: &'a mut Vec<Loaded>,
    files: &ModelFiles,
    device_name: &str,
    budget: &MemoryBudget,
    device: &B::Device,
) -> Result<&'a MaskedDiffusionLm<B>, String> {
    let kept = loaded.iter().position(|l| {
        l.dir == files.dir && l.device == device_name && l.model.is::<MaskedDiffusionLm<B>>()
    });
    let entry = match kept {
        Some(i) => loaded.remove(i),
        None => {
            let bytes = estimate_bytes(&files.checkpoint.config, 4);
            let fits = |kept: &[Loaded]| {
                let used: u64 = kept.iter().map(|l| l.bytes).sum();
                budget.available.is_none_or(|a| used + bytes <= a)
            };
            while !loaded.is_empty() && (loaded.len() >= MAX_LOADED || !fits(loaded)) {
                loaded.remove(0);
            }
            let used: u64 = loaded.iter().map(|l| l.bytes).sum();
            let room = MemoryBudget {
                available: budget.available.map(|a| a.saturating_sub(used)),
                ..budget.clone()
            };
            let model = files.load::<B>(device, &room).map_err(|e| e.to_string())?;
            Loaded {
                dir: files.dir.clone(),
                device: device_name.to_string(),
                bytes,
                model: Box::new(model),
            }
        }
    };
    loaded.push(entry);
    let last = loaded.last().expect("just pushed");
    Ok(last
        .model
        .downcast_ref::<MaskedDiffusionLm<B>>()
        .expect("kept with its backend's type"))
}
