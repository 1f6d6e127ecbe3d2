//! What the engine tells its caller: plain values over a channel (the GUI draws them, the CLI
//! prints them as JSON lines). No tensors ever cross this boundary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::eval::protocol::{EvalReport, SampleDetail};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A phase began: "loading", "evaluating (before)", "training", "evaluating (after)", "saving".
    Phase {
        phase: String,
    },
    Loaded {
        architecture: String,
        parameters: u64,
        device: String,
        forget_items: usize,
        retain_items: usize,
        run_dir: PathBuf,
        /// Items of each evaluation split (forget, retain, utility files), in full.
        #[serde(default)]
        eval_items: Vec<usize>,
    },
    Step {
        step: usize,
        steps: usize,
        loss: f64,
        parts: BTreeMap<String, f64>,
        lr: f64,
        grad_norm: f64,
        tokens_per_s: f64,
        elapsed_s: f64,
    },
    /// An evaluation; `label` is "live" (cheap subset) or "full"; `when` is "before", "after" or "step".
    Eval {
        step: usize,
        when: String,
        report: EvalReport,
    },
    /// The convergence diagnostic at a live evaluation: mean KL per token role on the live forget
    /// items (`inside::trace`).
    RoleKl {
        step: usize,
        means: Vec<crate::inside::trace::RoleMean>,
    },
    /// Per-item results of a full evaluation, one split at a time.
    Samples {
        step: usize,
        when: String,
        split: String,
        samples: Vec<SampleDetail>,
    },
    Checkpoint {
        step: usize,
        path: PathBuf,
        best: bool,
    },
    Warning {
        message: String,
    },
    /// What a time probe (`unlearn::cost`) found the run it probes would reuse instead of
    /// computing: the retain-only model's scores and the "before" evaluation (from this
    /// machine's cache, or recorded with the demo).
    Reuse {
        retain_model: bool,
        before: bool,
    },
    /// GPU kernels being compiled and tuned for this run so far (the first run on a device waits
    /// on them; later runs find them in the cache). `message` says so in words.
    Kernels {
        compiled: u64,
        tuned: u64,
        message: String,
    },
    /// The run ended normally.
    Finished {
        run_dir: PathBuf,
        model_dir: PathBuf,
        summary: serde_json::Value,
    },
    /// The run was stopped on request; the run directory is complete up to `step`.
    Stopped {
        step: usize,
        run_dir: PathBuf,
    },
    Failed {
        error: String,
    },
}

/// How the message of [`Event::Kernels`] begins.
pub use crate::kernel_runtime::activity::KERNELS_STATUS;

/// A cheap, shareable request to stop (Ctrl-C, the GUI's Stop button).
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// An error and its causes on one line, `outer: cause: cause`, each cause said once: an error
/// whose message already quotes its source (as `thiserror` messages with `{source}` do) does not
/// repeat it.
pub fn error_message(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
