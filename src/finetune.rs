//! `mdu finetune`: MDLM supervised fine-tuning of a LLaDA-architecture model from random init on a
//! folder written by `mdu demo-world` (TOFU JSON lines plus `tokenizer.json`), until it has
//! memorised the splits. Warm-up + cosine LR, AdamW, global-norm clipping, gradient accumulation,
//! periodic generation-based evaluation, checkpoints in HF layout, and `--resume`.
//!
//! Everything random is derived from `(seed, step)`, so a resumed run continues exactly as an
//! uninterrupted one would (the optimiser moments and parameter ids come back from Burn records).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, DiskDtype, WeightLayout};
use crate::data::{read_qa_file, QaItem};
use crate::device::{BackendTask, EngineBackend};
use crate::diffusion::batch::{SftBatch, SftExample};
use crate::diffusion::loss::{mdlm_loss, LossWeighting, NoisedBatch};
use crate::eval::{demo_sampler_config, mean_recall, score_generations};
use crate::model::init::random_init;
use crate::model::{MaskedDiffusionLm, ModelConfig};
use crate::rng::SplitMix64;
use crate::tokenizer::TextTokenizer;
use crate::train::clip::clip_global_norm;
use crate::train::schedule::{LrSchedule, LrShape};

#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
pub struct FinetuneArgs {
    /// Folder from `mdu demo-world` (forget/retain/world_facts/real_people .jsonl, tokenizer.json).
    #[arg(long)]
    pub data: PathBuf,
    /// Run folder: checkpoints, metrics.jsonl, and the final model in `model/`.
    #[arg(long)]
    pub out: PathBuf,
    /// Leave the forget split out (the retain-only model TOFU's forget quality compares against).
    #[arg(long)]
    pub retain_only: bool,
    #[arg(long, default_value_t = 4000)]
    pub steps: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Micro-batches accumulated per optimiser step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Final LR as a fraction of the peak.
    #[arg(long, default_value_t = 0.05)]
    pub floor_ratio: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    #[arg(long, default_value_t = 4)]
    pub layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 768)]
    pub mlp: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Steps between generation-based evaluations (0: only at the end).
    #[arg(long, default_value_t = 500)]
    pub eval_every: usize,
    /// Items per split in the periodic evaluation.
    #[arg(long, default_value_t = 20)]
    pub eval_items: usize,
    #[arg(long, default_value_t = 500)]
    pub save_every: usize,
    /// Continue from the newest checkpoint in `--out`.
    #[arg(long)]
    pub resume: bool,
}

#[derive(Serialize, Deserialize)]
struct TrainerState {
    step: usize,
    args: FinetuneArgs,
}

pub struct FinetuneTask(pub FinetuneArgs);

impl BackendTask for FinetuneTask {
    type Output = Result<()>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Result<()> {
        run::<Autodiff<B>>(self.0, device)
    }
}

fn run<B: AutodiffBackend>(args: FinetuneArgs, device: &B::Device) -> Result<()> {
    let (config, tokenizer) = demo_model_config(&args)?;
    let data = TrainingData::load(&args, &tokenizer)?;
    let template = copy_tokenizer_template(&args)?;

    let mut model: MaskedDiffusionLm<B> = random_init(&config, device, args.seed, 0.02);
    let mut optim = crate::train::adamw(args.weight_decay).init::<B, MaskedDiffusionLm<B>>();
    let mut start = 0;
    if args.resume {
        if let Some((dir, state)) =
            crate::train::resume::latest(&args.out, |s: &TrainerState| s.step)?
        {
            (model, optim) = crate::train::resume::load(&dir, model, optim, device)?;
            start = state.step;
            eprintln!("resuming from {} (step {start})", dir.display());
        }
    }
    let schedule = LrSchedule {
        peak: args.lr,
        warmup_steps: args.warmup,
        total_steps: args.steps,
        floor_ratio: args.floor_ratio,
        shape: LrShape::Cosine,
    };
    let mask = tokenizer.special.mask;
    let progress = progress_bar(args.steps, start);
    let mut metrics = String::new();
    let started = Instant::now();
    for step in start..args.steps {
        let lr = schedule.at(step);
        let (loss_sum, mut grads) = accumulated_grads(
            &model,
            &data.examples,
            &args,
            step,
            mask,
            &tokenizer,
            device,
        );
        let grad_norm = clip_global_norm::<B, _>(&model, &mut grads, args.max_grad_norm);
        model = optim.step(lr, model, grads);
        if !loss_sum.is_finite() {
            bail!("step {step}: the loss is {loss_sum}; lower --lr");
        }
        progress.set_message(format!("{loss_sum:.4}"));
        progress.inc(1);
        let done = step + 1;
        let line = serde_json::json!({ "step": done, "loss": loss_sum, "lr": lr, "grad_norm": grad_norm, "elapsed_s": started.elapsed().as_secs_f64() });
        metrics.push_str(&(line.to_string() + "\n"));
        let eval_now = (args.eval_every > 0 && done % args.eval_every == 0) || done == args.steps;
        if eval_now {
            let scores = live_scores(&model.valid(), &tokenizer, &data, &args, device)?;
            let line = serde_json::json!({ "step": done, "eval": "live", "scores": scores });
            progress.println(line.to_string());
            println!("{line}");
            metrics.push_str(&(line.to_string() + "\n"));
        }
        if (args.save_every > 0 && done % args.save_every == 0) || done == args.steps {
            append(
                &args.out.join("metrics.jsonl"),
                &std::mem::take(&mut metrics),
            )?;
            save_checkpoint(&args, &model, &optim, &config, done, &template)?;
        }
    }
    progress.finish();
    let last = args.out.join(format!("checkpoint-{}", args.steps));
    let final_dir = args.out.join("model");
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir)?;
    }
    copy_hf_folder(&last, &final_dir)?;
    eprintln!("final model: {}", final_dir.display());
    Ok(())
}

/// The splits of a `mdu demo-world` folder: forget and retain (evaluated live), and the encoded
/// training examples (retain, forget unless `--retain-only`, world facts, real people).
struct TrainingData {
    forget: Vec<QaItem>,
    retain: Vec<QaItem>,
    examples: Vec<SftExample>,
}

impl TrainingData {
    fn load(args: &FinetuneArgs, tokenizer: &TextTokenizer) -> Result<Self> {
        let load = |name: &str| {
            read_qa_file(&args.data.join(format!("{name}.jsonl"))).map_err(anyhow::Error::from)
        };
        let forget = load("forget")?;
        let retain = load("retain")?;
        let mut train_items: Vec<QaItem> = retain.clone();
        if !args.retain_only {
            train_items.extend(forget.iter().cloned());
        }
        for extra in ["world_facts", "real_people"] {
            train_items.extend(load(extra)?);
        }
        let examples = train_items
            .iter()
            .map(|it| SftExample::encode(tokenizer, it))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            forget,
            retain,
            examples,
        })
    }
}

/// Creates `--out` and copies the data's tokenizer files into `<out>/tokenizer`, the template
/// every checkpoint gets; returns that folder.
fn copy_tokenizer_template(args: &FinetuneArgs) -> Result<PathBuf> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let template = args.out.join("tokenizer");
    std::fs::create_dir_all(&template)?;
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(args.data.join(f), template.join(f))
            .with_context(|| format!("{}: missing {f}", args.data.display()))?;
    }
    Ok(template)
}

fn progress_bar(steps: usize, start: usize) -> indicatif::ProgressBar {
    let progress = indicatif::ProgressBar::new(steps as u64).with_position(start as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps · loss {msg} · {per_sec} · ETA {eta}",
        )
        .expect("template"),
    );
    progress
}

/// The summed loss and the accumulated gradients of optimiser step `step`'s micro-batches.
fn accumulated_grads<B: AutodiffBackend>(
    model: &MaskedDiffusionLm<B>,
    examples: &[SftExample],
    args: &FinetuneArgs,
    step: usize,
    mask: u32,
    tokenizer: &TextTokenizer,
    device: &B::Device,
) -> (f64, GradientsParams) {
    let mut loss_sum = 0.0f64;
    let mut grads_total: Option<GradientsParams> = None;
    for micro in 0..args.grad_accum.max(1) {
        let batch_index = step * args.grad_accum.max(1) + micro;
        let batch = batch_examples(examples, args.batch_size, batch_index, args.seed);
        let sft = SftBatch::new(&batch, tokenizer.special.eos);
        let mut rng = SplitMix64(
            args.seed ^ 0x6E01_5E00_0000 ^ (batch_index as u64).wrapping_mul(0x9E37_79B9),
        );
        let noised = NoisedBatch::sample(&sft, &mut rng, mask, LossWeighting::InverseTime);
        let loss = mdlm_loss(model, &noised, device) / args.grad_accum.max(1) as f32;
        loss_sum += loss.clone().into_scalar().elem_f64();
        let grads = GradientsParams::from_grads(loss.backward(), model);
        grads_total = Some(match grads_total {
            None => grads,
            Some(acc) => crate::train::accumulate_grads(model, acc, grads),
        });
    }
    (loss_sum, grads_total.expect("at least one micro-batch"))
}

/// The live evaluation: ROUGE-L recall of generations on the first `--eval-items` forget and
/// retain items.
fn live_scores<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    data: &TrainingData,
    args: &FinetuneArgs,
    device: &B::Device,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut scores = serde_json::Map::new();
    for (name, items) in [("forget", &data.forget), ("retain", &data.retain)] {
        let items = &items[..args.eval_items.min(items.len())];
        let sampler = demo_sampler_config(tokenizer, items, 4)?;
        let s = score_generations(model, tokenizer, items, &sampler, 32, device)?;
        scores.insert(format!("{name}_rougeL_recall"), mean_recall(&s).into());
    }
    Ok(scores)
}

/// The LLaDA-architecture config of the demo model, with special ids from the data's tokenizer.
fn demo_model_config(args: &FinetuneArgs) -> Result<(ModelConfig, TextTokenizer)> {
    let file = args.data.join("tokenizer.json");
    let raw = tokenizers::Tokenizer::from_file(&file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let id = |t: &str| {
        raw.token_to_id(t)
            .with_context(|| format!("{}: no {t} token", file.display()))
    };
    use crate::demo::tokenizer::{BOS, EOS, MASK};
    if args.hidden % args.heads != 0 {
        bail!(
            "--hidden {} is not divisible by --heads {}",
            args.hidden,
            args.heads
        );
    }
    let vocab = raw.get_vocab_size(true).div_ceil(64) * 64;
    let config = ModelConfig {
        mask_token_id: Some(id(MASK)?),
        eos_token_id: Some(id(EOS)?),
        pad_token_id: Some(id(EOS)?),
        bos_token_id: Some(id(BOS)?),
        ..ModelConfig::llada_shape(args.hidden, args.layers, args.heads, args.mlp, vocab)
    };
    let tokenizer = TextTokenizer::from_dir(&args.data, &config)?;
    Ok((config, tokenizer))
}

/// The examples of global batch `index`: epochs are seeded shuffles of all examples, concatenated.
fn batch_examples(
    examples: &[SftExample],
    batch_size: usize,
    index: usize,
    seed: u64,
) -> Vec<&SftExample> {
    let n = examples.len();
    let order = |epoch: usize| {
        let mut o: Vec<usize> = (0..n).collect();
        SplitMix64(seed ^ 0xE90C_0000 ^ epoch as u64).shuffle(&mut o);
        o
    };
    let first = index * batch_size;
    let mut cached: Option<(usize, Vec<usize>)> = None;
    (first..first + batch_size)
        .map(|k| {
            let epoch = k / n;
            if cached.as_ref().map(|c| c.0) != Some(epoch) {
                cached = Some((epoch, order(epoch)));
            }
            &examples[cached.as_ref().expect("set above").1[k % n]]
        })
        .collect()
}

fn save_checkpoint<B: AutodiffBackend, O: Optimizer<MaskedDiffusionLm<B>, B>>(
    args: &FinetuneArgs,
    model: &MaskedDiffusionLm<B>,
    optim: &O,
    config: &ModelConfig,
    step: usize,
    template: &Path,
) -> Result<()> {
    let dir = args.out.join(format!("checkpoint-{step}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    checkpoint::save(
        model,
        &WeightLayout::single(config, DiskDtype::F32),
        Some(template),
        &dir,
    )?;
    crate::train::resume::save(
        &dir,
        model,
        optim,
        &TrainerState {
            step,
            args: args.clone(),
        },
    )
}

fn copy_hf_folder(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)?.flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

trait ElemF64 {
    fn elem_f64(self) -> f64;
}

impl<E: burn::tensor::ElementConversion> ElemF64 for E {
    fn elem_f64(self) -> f64 {
        self.elem::<f64>()
    }
}
