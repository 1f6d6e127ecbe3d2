//! Per-block activation checkpointing (`model::checkpointing`) on the CPU in f32: the gradients of a
//! checkpointed step equal the plain step's for every weight, for both architectures, full
//! fine-tuning and LoRA, with and without a key-padding mask; a run with `checkpointing = "on"`
//! logs the same losses as one without.
//!
//! Tolerance: the checkpointed step runs the same operations, but its first pass through the blocks
//! runs outside the graph, where SiLU takes its untracked form (`x / (1 + e^−x)` against Burn's
//! `x·sigmoid(x)`): the two differ by f32 rounding (~1e-7 relative), which reaches the gradients
//! through a few blocks as ≤ 1e-5 of their largest entry.

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use mdu_workbench::bench::step::step_batches;
use mdu_workbench::device::CpuBackend;
use mdu_workbench::model::{loss_and_gradients, Adapters, LoraSettings};
use mdu_workbench::unlearn::config::{Checkpointing, UnlearnConfig};
use mdu_workbench::unlearn::engine;
use mdu_workbench::unlearn::methods::{Method, MethodParams, StepBatches, StepContext};
use mdu_workbench::MaskedDiffusionLm;

use crate::common::max_abs_diff;
use crate::unlearn::{data_files, training_only};

type Ad = Autodiff<CpuBackend>;

fn load(name: &str) -> MaskedDiffusionLm<Ad> {
    mdu_workbench::checkpoint::Checkpoint::open(&crate::common::fixture(name))
        .unwrap()
        .load::<Ad>(
            &Default::default(),
            &mdu_workbench::checkpoint::MemoryBudget::unlimited("cpu"),
        )
        .unwrap()
}

/// Every trainable weight's gradient in both sets, as host vectors.
struct Pairs<'a> {
    plain: &'a GradientsParams,
    taped: &'a GradientsParams,
    found: Vec<(Vec<f32>, Vec<f32>)>,
    missing: usize,
}

impl ModuleVisitor<Ad> for Pairs<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Ad, D>>) {
        let get = |g: &GradientsParams| {
            g.get::<CpuBackend, D>(param.id)
                .map(|t| t.into_data().into_vec::<f32>().unwrap())
        };
        match (get(self.plain), get(self.taped)) {
            (Some(a), Some(b)) => self.found.push((a, b)),
            (None, None) => {}
            (a, b) => {
                eprintln!(
                    "weight {:?} {:?}: plain {}, checkpointed {}",
                    param.id,
                    param.val().dims(),
                    a.is_some(),
                    b.is_some()
                );
                self.missing += 1
            }
        }
    }
}

/// The loss of `loss` and its gradients with and without checkpointing agree; returns how many
/// weights got a gradient.
fn same_gradients(
    name: &str,
    model: &MaskedDiffusionLm<Ad>,
    loss: impl Fn(&MaskedDiffusionLm<Ad>) -> Tensor<Ad, 1>,
) -> usize {
    let (plain_loss, _, plain) = loss_and_gradients(model, false, |m| (loss(m), ()));
    let (taped_loss, _, taped) = loss_and_gradients(model, true, |m| (loss(m), ()));
    let (a, b): (f32, f32) = (plain_loss.into_scalar(), taped_loss.into_scalar());
    assert!(
        (a - b).abs() <= 1e-5 * a.abs().max(1.0),
        "{name}: loss {a} vs {b}"
    );
    let mut pairs = Pairs {
        plain: &plain,
        taped: &taped,
        found: Vec::new(),
        missing: 0,
    };
    model.visit(&mut pairs);
    assert_eq!(
        pairs.missing, 0,
        "{name}: a weight has a gradient in one step only"
    );
    let mut worst = 0f32;
    for (k, (p, t)) in pairs.found.iter().enumerate() {
        let scale = p.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(p, t);
        worst = worst.max(diff / scale.max(1e-6));
        assert!(
            diff <= 1e-5 * scale.max(1e-6),
            "{name}: weight {k}: gradients differ by {diff} (largest {scale})"
        );
    }
    eprintln!(
        "{name}: loss {a} vs {b}; gradients differ by at most {worst:.1e} of their largest entry"
    );
    pairs.found.len()
}

/// MDU with τ = 0.5 (the frozen anchor pass) plus the retain NLL, on synthetic noised batches.
fn mdu_loss<'a>(
    reference: &'a MaskedDiffusionLm<CpuBackend>,
    batches: &'a (
        mdu_workbench::diffusion::loss::NoisedBatch,
        mdu_workbench::diffusion::loss::NoisedBatch,
    ),
) -> impl Fn(&MaskedDiffusionLm<Ad>) -> Tensor<Ad, 1> + 'a {
    move |m| {
        let ctx = StepContext {
            model: m,
            reference: Some(reference),
            device: &Default::default(),
            mask_id: m.config.mask_token_id.unwrap(),
            special_ids: &[],
        };
        let params = MethodParams {
            tau: 0.5,
            ..MethodParams::default()
        };
        let batches = StepBatches {
            forget: &batches.0,
            retain: Some(&batches.1),
        };
        Method::Mdu.loss(&ctx, &batches, &params).total
    }
}

#[test]
fn checkpointed_gradients_equal_the_plain_ones() {
    for name in ["llada_f32", "dream_gqa"] {
        let model = load(name);
        let reference = model.valid();
        let batches = step_batches(&model.config, 2, 12);
        let n = same_gradients(name, &model, mdu_loss(&reference, &batches));
        assert_eq!(
            n,
            model.num_params_tensors(),
            "{name}: every weight trains in full fine-tuning"
        );

        // LoRA: the base is frozen; only the adapters (B ≠ 0 after a step, drawn here) train.
        let settings = LoraSettings {
            rank: 4,
            alpha: 8.0,
            ..LoraSettings::default()
        };
        let base = load(name);
        let reference = base.valid();
        let adapters = Adapters::<Ad>::init(&settings, &base.config, 5, &Default::default());
        let lora = base.with_adapters(adapters);
        let n = same_gradients(
            &format!("{name} LoRA"),
            &lora,
            mdu_loss(&reference, &batches),
        );
        let adapter_tensors = lora.adapters.as_ref().unwrap().num_params_tensors();
        assert_eq!(n, adapter_tensors, "{name} LoRA: only the adapters train");

        // A padding mask goes through the recomputed blocks too.
        let pad: Vec<bool> = (0..12)
            .map(|i| i >= 9)
            .chain((0..12).map(|_| false))
            .collect();
        let ids: Vec<i64> = (0..24).map(|i| (i * 7 % 250) as i64).collect();
        let padded = |m: &MaskedDiffusionLm<Ad>| {
            let device = Default::default();
            let ids =
                Tensor::<Ad, 2, Int>::from_data(TensorData::new(ids.clone(), [2, 12]), &device);
            let pad =
                Tensor::<Ad, 2, Bool>::from_data(TensorData::new(pad.clone(), [2, 12]), &device);
            m.logits_all(m.forward_hidden(ids, Some(pad)))
                .powi_scalar(2)
                .mean()
        };
        same_gradients(&format!("{name} padded"), &model, padded);
    }
}

trait CountTensors {
    fn num_params_tensors(&self) -> usize;
}

impl<M: Module<Ad>> CountTensors for M {
    fn num_params_tensors(&self) -> usize {
        struct Count(usize);
        impl ModuleVisitor<Ad> for Count {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Ad, D>>) {
                if param.val().is_require_grad() {
                    self.0 += 1;
                }
            }
        }
        let mut count = Count(0);
        self.visit(&mut count);
        count.0
    }
}

/// The `loss` of each logged step, in order.
fn step_losses(run: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "step")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn a_run_with_checkpointing_on_logs_the_same_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    let stop = mdu_workbench::events::StopFlag::new();
    let mut losses = Vec::new();
    for setting in [Checkpointing::Off, Checkpointing::On] {
        let run = tmp.path().join(format!("{setting:?}"));
        let config = UnlearnConfig {
            checkpointing: setting,
            ..training_only(forget.clone(), retain.clone(), 3, 0)
        };
        let mut warnings = Vec::new();
        engine::run(
            config,
            run.clone(),
            false,
            &mut |e| {
                if let mdu_workbench::events::Event::Warning { message } = e {
                    warnings.push(message);
                }
            },
            &stop,
        )
        .unwrap();
        let said = warnings.iter().any(|w| w.contains("checkpointing is on"));
        assert_eq!(said, setting == Checkpointing::On, "{warnings:?}");
        losses.push(step_losses(&run));
    }
    assert_eq!(losses[0].len(), 3);
    for (a, b) in losses[0].iter().zip(&losses[1]) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{losses:?}");
    }
}
