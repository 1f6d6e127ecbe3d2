//! `mdu trace` (the token-level KL trace with token roles) and `mdu leakage` (the leakage probe).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::leakage::{probe, LeakageReport};
use super::roles::{RoleRule, STRUCTURAL_SHARE};
use super::trace::{role_means, trace_along, trace_items, QuestionTrace, RoleMean};
use crate::checkpoint::{MemoryBudget, ModelFiles};
use crate::data::{read_qa_file, write_atomic, QaItem};
use crate::device::{BackendTask, DeviceChoice, EngineBackend};
use crate::eval::cli::ProtocolArg;
use crate::eval::protocol::{sampler_config, Generation};

#[derive(clap::Args, Debug, Clone)]
pub struct TraceArgs {
    /// The model to trace (HF layout). Default with --run: the run's `model/`.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The model the run started from: its question-masked prediction is the anchor. Default with
    /// --run: the run's input model; else the traced model itself.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// A run folder of `mdu unlearn`: its model, starting model and τ.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Follow the denoising paths of this trace.jsonl (another model's, same questions) instead
    /// of sampling: every token's KL then compares across the two models.
    #[arg(long)]
    pub along: Option<PathBuf>,
    /// Question–answer file to trace (its first --items questions).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long, default_value_t = 24)]
    pub items: usize,
    /// τ of the target softmax(τ·z_u). Default: the run's with --run, else 1 (the raw anchor).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Share of the split's answers a word must occur in to be structural.
    #[arg(long, default_value_t = STRUCTURAL_SHARE)]
    pub structural_share: f64,
    /// JSON object word → role ("in-context", "structural", "stored-knowledge") applied after the rule.
    #[arg(long)]
    pub roles: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "demo")]
    pub protocol: ProtocolArg,
    /// Output folder: trace.jsonl (one question per line) and role_means.json.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "auto", help = format!("Compute device: {}", crate::device::device_help()))]
    pub device: String,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LeakageArgs {
    /// The unlearned model (HF layout).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The forget file whose answers the probe tries to get back.
    #[arg(long)]
    pub forget: PathBuf,
    /// A retain file: its items become the elicitation contexts.
    #[arg(long)]
    pub retain: Option<PathBuf>,
    #[arg(long)]
    pub max_items: Option<usize>,
    #[arg(long, value_enum, default_value = "demo")]
    pub protocol: ProtocolArg,
    /// Write the per-item report (every path's ROUGE-L, the worst path and its answer) here as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "auto", help = format!("Compute device: {}", crate::device::device_help()))]
    pub device: String,
}

fn generation(p: ProtocolArg) -> Generation {
    match p {
        ProtocolArg::Demo => Generation::Demo { margin: 4 },
        ProtocolArg::Paper => Generation::Paper,
    }
}

/// What a trace needs, resolved from the flags and the run folder.
#[derive(Clone, Debug)]
struct TraceInputs {
    checkpoint: PathBuf,
    base: Option<PathBuf>,
    tau: f64,
}

fn resolve(args: &TraceArgs) -> Result<TraceInputs> {
    let Some(run) = &args.run else {
        let Some(checkpoint) = args.checkpoint.clone() else {
            bail!("no model: pass --checkpoint DIR or --run RUN_DIR");
        };
        return Ok(TraceInputs {
            checkpoint,
            base: args.base.clone(),
            tau: args.tau.unwrap_or(1.0),
        });
    };
    // The run's resolved config (`mdu unlearn` writes it with absolute paths): only the three
    // settings a trace needs are read.
    let config_file = run.join("config.toml");
    let not_a_run = || format!("{}: not a run folder of mdu unlearn", run.display());
    let text = std::fs::read_to_string(&config_file).with_context(not_a_run)?;
    let config: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{}: not valid TOML", config_file.display()))?;
    let started_from = match (config.get("checkpoint"), config.get("demo")) {
        (Some(toml::Value::String(dir)), _) => PathBuf::from(dir),
        (_, Some(toml::Value::Boolean(true))) => crate::demo::embedded::unpack()?.model,
        _ => bail!("{}: names no model (`checkpoint`)", config_file.display()),
    };
    let run_tau = config
        .get("params")
        .and_then(|p| p.get("tau"))
        .and_then(|t| t.as_float().or(t.as_integer().map(|i| i as f64)))
        .unwrap_or(1.0);
    Ok(TraceInputs {
        checkpoint: args.checkpoint.clone().unwrap_or_else(|| run.join("model")),
        base: Some(args.base.clone().unwrap_or(started_from)),
        tau: args.tau.unwrap_or(run_tau),
    })
}

pub fn trace(args: TraceArgs) -> Result<()> {
    let inputs = resolve(&args)?;
    let choice = DeviceChoice::parse(&args.device).map_err(anyhow::Error::msg)?;
    let items = first_items(&args.data, args.items)?;
    let mut rule = RoleRule::for_answers(
        items.iter().map(|it| it.answer.as_str()),
        args.structural_share,
    );
    if let Some(path) = &args.roles {
        rule = rule.with_overrides_file(path)?;
    }
    let along = args.along.as_deref().map(read_trace).transpose()?;
    let traces = choice.run(TraceTask {
        inputs: &inputs,
        items: &items,
        rule: &rule,
        along: along.as_deref(),
        generation: generation(args.protocol),
        budget: choice.memory_budget(),
    })?;
    let means = role_means(&traces);
    write_trace(&args.out, &traces, &means)?;
    println!("{}", serde_json::to_string_pretty(&means)?);
    Ok(())
}

/// Writes `trace.jsonl` and `role_means.json` into `out`, each atomically.
pub fn write_trace(out: &Path, traces: &[QuestionTrace], means: &[RoleMean]) -> Result<()> {
    let mut lines = String::new();
    for t in traces {
        lines.push_str(&serde_json::to_string(t)?);
        lines.push('\n');
    }
    write_atomic(&out.join("trace.jsonl"), lines.as_bytes())
        .with_context(|| format!("{}: cannot write", out.join("trace.jsonl").display()))?;
    write_atomic(
        &out.join("role_means.json"),
        serde_json::to_string_pretty(means)?.as_bytes(),
    )
    .with_context(|| format!("{}: cannot write", out.join("role_means.json").display()))?;
    Ok(())
}

/// Reads the traces of a `trace.jsonl`.
pub fn read_trace(path: &Path) -> Result<Vec<QuestionTrace>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a trace line", path.display(), i + 1))
        })
        .collect()
}

fn first_items(file: &Path, n: usize) -> Result<Vec<QaItem>> {
    let mut items = read_qa_file(file)?;
    items.truncate(n.max(1));
    Ok(items)
}

struct TraceTask<'a> {
    inputs: &'a TraceInputs,
    items: &'a [QaItem],
    rule: &'a RoleRule,
    along: Option<&'a [QuestionTrace]>,
    generation: Generation,
    budget: MemoryBudget,
}

impl BackendTask for TraceTask<'_> {
    type Output = Result<Vec<QuestionTrace>>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output {
        let files = ModelFiles::open(&self.inputs.checkpoint)?;
        let model = files.load::<B>(device, &self.budget)?;
        let base = match &self.inputs.base {
            Some(dir) if dir != &self.inputs.checkpoint => {
                Some(ModelFiles::open(dir)?.load::<B>(device, &self.budget)?)
            }
            _ => None,
        };
        let base = Some(base.as_ref().unwrap_or(&model));
        if let Some(recorded) = self.along {
            return trace_along(
                &model,
                base,
                &files.tokenizer,
                recorded,
                self.inputs.tau,
                device,
            );
        }
        let sampler = sampler_config(&model, &files.tokenizer, self.items, &self.generation)?;
        trace_items(
            &model,
            base,
            &files.tokenizer,
            self.items,
            &sampler,
            self.inputs.tau,
            self.rule,
            device,
        )
    }
}

pub fn leakage(args: LeakageArgs) -> Result<()> {
    let choice = DeviceChoice::parse(&args.device).map_err(anyhow::Error::msg)?;
    let mut forget = read_qa_file(&args.forget)?;
    if let Some(n) = args.max_items {
        forget.truncate(n);
    }
    let retain = match &args.retain {
        Some(file) => read_qa_file(file)?,
        None => Vec::new(),
    };
    let report = choice.run(LeakageTask {
        checkpoint: &args.checkpoint,
        forget: &forget,
        retain: &retain,
        generation: generation(args.protocol),
        budget: choice.memory_budget(),
    })?;
    if let Some(path) = &args.out {
        write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "items": report.items.len(),
            "default_rougeL_recall": report.default_rouge_l,
            "worst_path_rougeL_recall": report.worst_rouge_l,
            "paths": report.path_means,
        }))?
    );
    Ok(())
}

struct LeakageTask<'a> {
    checkpoint: &'a Path,
    forget: &'a [QaItem],
    retain: &'a [QaItem],
    generation: Generation,
    budget: MemoryBudget,
}

impl BackendTask for LeakageTask<'_> {
    type Output = Result<LeakageReport>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output {
        let files = ModelFiles::open(self.checkpoint)?;
        let model = files.load::<B>(device, &self.budget)?;
        let never = || false;
        Ok(probe(
            &model,
            &files.tokenizer,
            self.forget,
            self.retain,
            &self.generation,
            None,
            16,
            device,
            &never,
            |_, _| {},
        )?)
    }
}
