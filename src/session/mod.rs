//! The engine session: one worker thread that owns the loaded models and their device. The window
//! (and any other front end) sends it commands — open a model, trace a denoising, answer a
//! question, start or stop an unlearning — and gets back plain values: strings, numbers, events.
//! A model loaded once is kept for the next command that needs it (the Ask box, the Denoising
//! view) as long as the models kept fit the device's memory estimate; an unlearning run frees them.
//!
//! Adding a view that needs the loaded model means one [`Command`] here (with its plain reply
//! type) and one panel file under `src/gui/`.

mod cache;
mod info;
mod inside;
mod save;
mod trace;

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};

pub use info::{DeviceList, DeviceMemory, ModelInfo, AUTO_DEVICE};
pub use inside::{InsideTraces, KlTraceRequest};
pub use trace::{Trace, MASKED};

use crate::data::QaItem;
use crate::demo::embedded::DemoPaths;
use crate::events::{Event, StopFlag};
use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::cost::CostEstimate;

/// A reply that arrives later (from the session, or from background work the window must not
/// wait for: a file dialog, a folder scan, a copy): poll it each frame.
pub struct Pending<T> {
    rx: Option<Receiver<T>>,
}

impl<T: Send + 'static> Pending<T> {
    /// Runs `work` on a short-lived thread named `mdu-<name>`.
    pub fn spawn(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name(format!("mdu-{name}"))
            .spawn(move || {
                let _ = tx.send(work());
            });
        Self {
            rx: spawned.ok().map(|_| rx),
        }
    }

    /// A reply that is already there (tests, answers known up front).
    pub fn ready(value: T) -> Self {
        let (tx, rx) = channel();
        let _ = tx.send(value);
        Self { rx: Some(rx) }
    }
}

impl<T> Pending<T> {
    fn new() -> (Sender<T>, Self) {
        let (tx, rx) = channel();
        (tx, Self { rx: Some(rx) })
    }

    /// The reply once it is there; `None` while it is being worked on (and after it was taken).
    pub fn poll(&mut self) -> Option<T> {
        let rx = self.rx.as_ref()?;
        match rx.try_recv() {
            Ok(v) => {
                self.rx = None;
                Some(v)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.rx = None;
                None
            }
        }
    }

    pub fn is_pending(&self) -> bool {
        self.rx.is_some()
    }

    /// Waits for the reply (command-line use and tests).
    pub fn wait(mut self) -> Option<T> {
        self.rx.take()?.recv().ok()
    }
}

/// A running unlearning: its events as they come, and the request to stop it.
pub struct RunHandle {
    pub events: Receiver<Event>,
    pub stop: StopFlag,
}

/// What the session is asked to do. Each command carries where its reply goes.
pub enum Command {
    /// Read a model folder's config, headers and tokenizer (kept for later commands).
    OpenModel(PathBuf, Sender<Result<ModelInfo, String>>),
    /// Generate an answer step by step with the model in a folder on a device.
    Trace(TraceRequest, Sender<Result<Trace, String>>),
    /// Resolve and run an unlearning on its own thread, events to the sender.
    Unlearn {
        config: UnlearnConfig,
        run_dir: PathBuf,
        resume: bool,
        events: Sender<Event>,
        stop: StopFlag,
    },
    /// The Inside view's token-level KL traces, before and after unlearning.
    KlTrace(KlTraceRequest, Sender<Result<InsideTraces, String>>),
    /// Time a short probe of a run and scale it to the run (`unlearn::cost`), on its own thread.
    EstimateCost(UnlearnConfig, Sender<Result<CostEstimate, String>>),
}

/// A denoising trace (or a question from the Ask box, which is one with free answer slots).
#[derive(Clone, Debug)]
pub struct TraceRequest {
    pub model_dir: PathBuf,
    pub item: QaItem,
    /// `--device` syntax.
    pub device: String,
    /// The answer gets this many slots; `None`: the gold answer's length plus a margin.
    pub free_tokens: Option<usize>,
}

/// The handle the window holds; cheap to clone. The worker ends when the last handle is dropped.
#[derive(Clone)]
pub struct Session {
    tx: Sender<Command>,
}

impl Session {
    /// Starts the worker thread.
    pub fn start() -> Self {
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name("mdu-session".into())
            .spawn(move || cache::serve(rx));
        if let Err(e) = spawned {
            // Every later command then answers nothing (Pending stays empty); say why once.
            eprintln!("error: cannot start the engine session thread: {e}");
        }
        Self { tx }
    }

    fn ask<T>(&self, command: impl FnOnce(Sender<T>) -> Command) -> Pending<T> {
        let (tx, pending) = Pending::new();
        let _ = self.tx.send(command(tx));
        pending
    }

    // What needs no model runs on a short-lived thread of its own, beside the worker.

    /// Unpacks the embedded demo (model, retain-only model, data files) into the user's data folder.
    pub fn unpack_demo(&self) -> Pending<Result<DemoPaths, String>> {
        Pending::spawn("demo", || {
            crate::demo::embedded::unpack().map_err(|e| crate::events::error_message(&e))
        })
    }

    /// The devices a run can use, and why CUDA is not among them.
    pub fn list_devices(&self) -> Pending<DeviceList> {
        Pending::spawn("devices", DeviceList::probe)
    }

    /// Free memory and storage type of a device (`--device` syntax), when known.
    pub fn device_memory(&self, device: &str) -> Pending<Option<DeviceMemory>> {
        let device = device.to_string();
        Pending::spawn("memory", move || DeviceMemory::probe(&device))
    }

    /// The longest training item of the forget and retain files for `model`'s tokenizer.
    pub fn longest_item(
        &self,
        model: PathBuf,
        files: Vec<PathBuf>,
    ) -> Pending<Result<usize, String>> {
        Pending::spawn("lengths", move || info::longest_item(&model, &files))
    }

    /// Writes the model in `src` (a run's `model/`) as a full model folder `dest`: a copy, or a
    /// LoRA adapter merged into its base.
    pub fn save_model(&self, src: PathBuf, dest: PathBuf) -> Pending<Result<PathBuf, String>> {
        Pending::spawn("save", move || save::save_model(&src, &dest))
    }

    pub fn open_model(&self, dir: PathBuf) -> Pending<Result<ModelInfo, String>> {
        self.ask(|tx| Command::OpenModel(dir, tx))
    }

    pub fn trace(&self, request: TraceRequest) -> Pending<Result<Trace, String>> {
        self.ask(|tx| Command::Trace(request, tx))
    }

    /// The token-level KL traces of the starting and the unlearned model (`inside::trace`).
    pub fn kl_trace(&self, request: KlTraceRequest) -> Pending<Result<InsideTraces, String>> {
        self.ask(|tx| Command::KlTrace(request, tx))
    }

    /// What `config` will cost in time, from a measured probe of it (seconds to minutes).
    pub fn estimate_cost(&self, config: UnlearnConfig) -> Pending<Result<CostEstimate, String>> {
        self.ask(|tx| Command::EstimateCost(config, tx))
    }

    /// Starts an unlearning; a failure to resolve or run it arrives as [`Event::Failed`].
    pub fn unlearn(&self, config: UnlearnConfig, run_dir: PathBuf, resume: bool) -> RunHandle {
        let (events, rx) = channel();
        let stop = StopFlag::new();
        let command = Command::Unlearn {
            config,
            run_dir,
            resume,
            events,
            stop: stop.clone(),
        };
        let _ = self.tx.send(command);
        RunHandle { events: rx, stop }
    }
}
