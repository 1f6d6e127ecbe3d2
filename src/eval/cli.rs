//! `mdu eval`: the evaluation of `mdu unlearn` on any model and files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;

use super::audit::PrivacyAudit;
use super::privacy::MiaSettings;
use super::protocol::{evaluate, retain_model_truth_ratios};
use super::report::{
    forget_quality, protocol_legend, EvalSettings, EvalSplit, Generation, SplitRole,
};
use crate::device::{BackendTask, DeviceChoice, EngineBackend};

#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Model folder (HF layout).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A LoRA adapter folder (PEFT format) to merge into the checkpoint before evaluating.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// TOFU-format files; the split's role comes from its name (forget…, retain…, real…, world…).
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// The retain-only model: adds TOFU forget quality (needs a forget file).
    #[arg(long)]
    pub retain_model: Option<PathBuf>,
    /// Items the model never saw (TOFU's holdout files): adds the privacy audit (membership
    /// inference on forget vs holdout, privleak with --retain-model, extraction strength, exact
    /// memorisation); needs a forget file.
    #[arg(long)]
    pub holdout: Option<PathBuf>,
    /// Pairs of complementary maskings per answer in the privacy audit.
    #[arg(long, default_value_t = 4)]
    pub mia_mask_pairs: usize,
    /// Generation setting: the paper's (128 new tokens; slow on a CPU) or the demo's (slot = longest answer + 4).
    #[arg(long, value_enum, default_value = "demo")]
    pub protocol: ProtocolArg,
    /// Monte-Carlo maskings per answer for every probability.
    #[arg(long, default_value_t = 8)]
    pub mc_samples: usize,
    /// Evaluate only the first N items of each file.
    #[arg(long)]
    pub max_items: Option<usize>,
    /// Write per-item details (question, gold, generation, scores) as JSON lines here.
    #[arg(long)]
    pub details: Option<PathBuf>,
    #[arg(long, default_value = "auto", help = format!("Compute device: {}", crate::device::device_help()))]
    pub device: String,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ProtocolArg {
    Demo,
    Paper,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let choice = DeviceChoice::parse(&args.device).map_err(anyhow::Error::msg)?;
    let report = choice.run(EvalTask(args.clone(), choice.memory_budget()))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

struct EvalTask(EvalArgs, crate::checkpoint::MemoryBudget);

impl BackendTask for EvalTask {
    type Output = Result<serde_json::Value>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output {
        let EvalTask(args, budget) = self;
        let files =
            crate::checkpoint::ModelFiles::open_with(&args.checkpoint, args.adapter.as_deref())?;
        let tokenizer = &files.tokenizer;
        // Autodiff for the GradNorm attack; the evaluation itself runs on the plain model.
        let trainable = files.load::<Autodiff<B>>(device, &budget)?;
        let model = trainable.valid();
        let splits = args
            .data
            .iter()
            .map(|file| EvalSplit::from_file(file))
            .collect::<Result<Vec<_>, _>>()?;
        let settings = EvalSettings {
            generation: match args.protocol {
                ProtocolArg::Demo => Generation::Demo { margin: 4 },
                ProtocolArg::Paper => Generation::Paper,
            },
            max_items: args.max_items,
            ..EvalSettings::full(args.mc_samples)
        };
        let never = || false;
        let mut report = evaluate(&model, tokenizer, &splits, &settings, device, &never)?;
        if let (Some(dir), Some(ours)) = (&args.retain_model, report.forget_truth_ratios()) {
            let forget = splits
                .iter()
                .find(|s| s.role == SplitRole::Forget)
                .expect("forget truth ratios come from a forget split");
            let theirs = retain_model_truth_ratios::<B>(
                dir,
                &forget.items,
                &settings,
                &budget,
                device,
                &never,
            )?;
            report.forget_quality = theirs.and_then(|t| forget_quality(&ours, &t));
        }
        if let Some(holdout) = &args.holdout {
            let forget = splits
                .iter()
                .find(|s| s.role == SplitRole::Forget)
                .with_context(|| {
                    format!(
                        "{}: the privacy audit compares a forget file with the holdout; \
                         pass one whose name starts with \"forget\"",
                        holdout.display()
                    )
                })?;
            let holdout_items = crate::data::read_qa_file(holdout)?;
            let mia = MiaSettings {
                mask_pairs: args.mia_mask_pairs,
                ..MiaSettings::default()
            };
            let mut audit = PrivacyAudit::new(
                &forget.items,
                &holdout_items,
                mia,
                args.max_items,
                &settings.generation,
                &model,
                tokenizer,
            )?;
            if let Some(dir) = &args.retain_model {
                let device_name = args.device.clone();
                audit.score_retain_model::<Autodiff<B>>(
                    dir,
                    &budget,
                    device,
                    &device_name,
                    true,
                    &never,
                )?;
            }
            report.privacy = Some(audit.run(&trainable, device, &never)?);
        }
        if let Some(path) = &args.details {
            crate::data::write_atomic(path, report.details_jsonl().as_bytes())?;
        }
        let mut value = serde_json::to_value(&report)?;
        value
            .as_object_mut()
            .expect("object")
            .insert("protocols".into(), protocol_legend());
        Ok(value)
    }
}
