//! The memory one unlearning step needs, part by part, before anything is loaded: the same plan
//! for the pre-load check of `mdu unlearn`, `mdu bench-step`'s report and the window's "fits /
//! does not fit".
//!
//! Parts (S = bytes per stored value: 4 in f32, 2 in bf16/f16; P = model parameters, Pa = LoRA
//! parameters; M = bytes per trained parameter for AdamW's two moments: 8 in f32, 4 with bf16
//! moments on a device that stores bf16; adapters are always f32):
//! - weights `P·S`;
//! - the starting model kept for the anchor / reference: `P·S` in full fine-tuning for the methods
//!   that read it (the optimiser gives every weight a new tensor, the old ones stay alive), nothing
//!   with LoRA (the base is the anchor) or for GA / GradDiff;
//! - gradients `P·S` (LoRA: `Pa·4`), AdamW moments `P·M` (LoRA: `Pa·M`), the adapters `Pa·4`;
//! - activations kept for the backward pass: per trained token and layer
//!   `ACT_PER_D·d + ACT_PER_F·f + ACT_PER_SCORE·heads·width` values, in f32 where the model
//!   computes in f32 (norms, RoPE, softmax) and in S elsewhere: counted at 4 bytes. With
//!   per-block checkpointing (`model::checkpointing`) only each block's input is kept (`d` values
//!   per token and layer, plus the embedding output), and one block's activations for one forward
//!   pass's rows exist at a time while it is recomputed;
//! - the logits of the masked answer rows, `LOGIT_COPIES` f32 copies of `rows × vocab` (model
//!   logits, log-softmax, the anchor's target distribution, their gradients);
//! - on the CPU, the process itself (`CPU_RUNTIME_BYTES`, measured with a model of 8 dimensions).
//!
//! The peak is not their sum: the logits rows are freed early in the backward pass, before most
//! gradients exist, so it is everything else plus the larger of the logits rows and the gradients.
//!
//! The coefficients count the tensors Burn's autodiff keeps in `transformer.rs`'s block (norm
//! input and output, q/k/v, both RoPE products, attention scores and probabilities, the MLP's
//! gate/up/SiLU/product) and were then checked against the peak resident memory of
//! `mdu bench-step` on the CPU (results/memory_plan/).

use super::config::{Checkpointing, UnlearnConfig};
use crate::model::{LoraSettings, ModelConfig};

/// Values kept per trained token, layer and model dimension `d`.
pub const ACT_PER_D: u64 = 16;
/// … per MLP dimension `f`.
pub const ACT_PER_F: u64 = 6;
/// … per attention score (`heads × width` of them per token).
pub const ACT_PER_SCORE: u64 = 3;
/// f32 copies of the masked rows' logits alive at the peak.
pub const LOGIT_COPIES: u64 = 5;
/// The `mdu` process on the CPU before any model (peak resident memory of a d = 8 step).
pub const CPU_RUNTIME_BYTES: u64 = 32 << 20;

/// What the plan is asked about.
#[derive(Clone, Debug)]
pub struct PlanInputs<'a> {
    pub config: &'a ModelConfig,
    /// Bytes per stored weight on the device (4 for f32, 2 for bf16/f16).
    pub storage_bytes: u64,
    /// Bytes per trained parameter for AdamW's two moments (`MomentPrecision::bytes_per_parameter`).
    pub moment_bytes: u64,
    pub lora: Option<&'a LoraSettings>,
    /// The method reads the frozen starting model (MDU's anchor, NPO's reference).
    pub uses_reference: bool,
    /// Rows per micro-batch that carry gradients (forget + retain).
    pub rows: usize,
    /// Rows of the largest single forward pass (one block of it is recomputed at a time when
    /// checkpointing).
    pub pass_rows: usize,
    /// Per-block activation checkpointing.
    pub checkpointing: bool,
    /// Tokens per row.
    pub width: usize,
    /// Masked answer positions per micro-batch (the rows the LM head is applied to).
    pub masked: usize,
    /// The device is the CPU: the process's own memory counts too.
    pub on_cpu: bool,
}

impl<'a> PlanInputs<'a> {
    /// A step of `run`: `batch_size` forget rows (and as many retain rows for the methods that
    /// train on retain), `width` tokens each (the longest item), half of them masked (the noise
    /// level averages ½). `bf16_storage`: the device can store bf16 tensors (bf16 moments save
    /// memory only there).
    pub fn for_run(
        run: &'a UnlearnConfig,
        model: &'a ModelConfig,
        width: usize,
        storage_bytes: u64,
        bf16_storage: bool,
        on_cpu: bool,
    ) -> Self {
        let rows = run.batch_size * if run.method.uses_retain() { 2 } else { 1 };
        Self {
            config: model,
            storage_bytes,
            moment_bytes: run.moments.bytes_per_parameter(bf16_storage),
            lora: run.lora.as_ref(),
            uses_reference: run.method.uses_reference(&run.params),
            rows,
            pass_rows: run.batch_size,
            checkpointing: run.checkpointing == Checkpointing::On,
            width,
            masked: rows * width / 2,
            on_cpu,
        }
    }

    /// Resolves `auto` checkpointing against the device's free memory (`None`: unknown, off)
    /// and returns whether it is on and the plan of the step as it will run.
    pub fn resolve(mut self, setting: Checkpointing, available: Option<u64>) -> (bool, MemoryPlan) {
        self.checkpointing = match setting {
            Checkpointing::On => true,
            Checkpointing::Off => false,
            Checkpointing::Auto => {
                // LoRA dropout cannot be recomputed (see `UnlearnConfig::checkpointing_conflict`).
                let dropout = self.lora.is_some_and(|l| l.dropout > 0.0);
                self.checkpointing = false;
                !dropout && available.is_some_and(|free| MemoryPlan::of(&self).total() > free)
            }
        };
        (self.checkpointing, MemoryPlan::of(&self))
    }
}

/// The parts of the peak, in bytes, in the order they are shown.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    pub parts: Vec<(&'static str, u64)>,
}

impl MemoryPlan {
    pub fn of(i: &PlanInputs) -> Self {
        let c = i.config;
        let params = c.num_parameters();
        let s = i.storage_bytes;
        let mut parts = vec![("weights", params * s)];
        match i.lora {
            Some(lora) => {
                let pa = lora.num_parameters(c);
                parts.push(("adapters", pa * 4));
                parts.push(("gradients", pa * 4));
                parts.push(("AdamW moments", pa * i.moment_bytes));
            }
            None => {
                if i.uses_reference {
                    parts.push(("starting model (anchor)", params * s));
                }
                parts.push(("gradients", params * s));
                parts.push(("AdamW moments", params * i.moment_bytes));
            }
        }
        let tokens = (i.rows * i.width) as u64;
        let per_token_layer = ACT_PER_D * c.hidden_size as u64
            + ACT_PER_F * c.intermediate_size as u64
            + ACT_PER_SCORE * (c.num_heads * i.width) as u64;
        if i.checkpointing {
            let layers = c.num_layers as u64 + 1;
            parts.push(("block inputs", tokens * layers * c.hidden_size as u64 * 4));
            let pass_tokens = (i.pass_rows.min(i.rows) * i.width) as u64;
            parts.push(("one block's activations", pass_tokens * per_token_layer * 4));
        } else {
            parts.push((
                "activations",
                tokens * c.num_layers as u64 * per_token_layer * 4,
            ));
        }
        parts.push((
            "logits rows",
            i.masked as u64 * c.vocab_size as u64 * 4 * LOGIT_COPIES,
        ));
        if i.on_cpu {
            parts.push(("process", CPU_RUNTIME_BYTES));
        }
        Self { parts }
    }

    fn part(&self, name: &str) -> u64 {
        self.parts
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, b)| *b)
    }

    /// The peak: every part, but only the larger of the logits rows and the gradients.
    pub fn total(&self) -> u64 {
        let all: u64 = self.parts.iter().map(|(_, b)| b).sum();
        let (logits, grads) = (self.part("logits rows"), self.part("gradients"));
        all - logits.min(grads)
    }

    /// `weights 16 GiB + … (the larger of logits rows and gradients) = 31 GiB`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .parts
            .iter()
            .filter(|(_, b)| *b > 0)
            .map(|(name, b)| format!("{name} {}", gib(*b)))
            .collect();
        format!(
            "{}, with only the larger of logits rows and gradients at the peak = {}",
            parts.join(" + "),
            gib(self.total())
        )
    }

    /// One line for a plan that does not fit in `available` bytes: the numbers and what to try.
    pub fn refusal(&self, device: &str, available: u64, lora: bool) -> String {
        let mut advice = Vec::new();
        if !lora {
            advice.push("LoRA (--lora) trains a few adapters on a frozen base");
        }
        if !self.parts.iter().any(|(name, _)| *name == "block inputs") {
            advice.push("activation checkpointing (--checkpointing on)");
        }
        advice.push("a smaller --batch-size (with grad_accum to keep the effective batch)");
        format!(
            "one step needs about {} on {device} but {} is free ({}); try {}",
            gib(self.total()),
            gib(available),
            self.describe(),
            advice.join(", or ")
        )
    }
}

fn gib(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if g >= 10.0 {
        format!("{g:.0} GiB")
    } else if g >= 0.1 {
        format!("{g:.1} GiB")
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}
