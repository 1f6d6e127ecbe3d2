//! Command-line interface: `mdu` (GUI) and the headless subcommands.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::bench::{BenchPreset, ForwardBench};
use crate::checkpoint::{self, Checkpoint};
use crate::device::{device_help, list_devices, BackendTask, DeviceChoice, EngineBackend};

#[derive(Parser, Debug)]
#[command(
    name = "mdu",
    version,
    about = "MDU Workbench: masked-diffusion unlearning for LLaDA and Dream models.\nWith no subcommand, opens the GUI."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Float storage of weights and activations on GPU devices (default: bf16 on CUDA, f32 on wgpu;
    /// the CPU is always f32). Softmax, KL and losses stay f32 in every case, and so do the
    /// optimizer moments unless `unlearn --moments bf16`.
    #[arg(long, global = true, value_enum)]
    pub precision: Option<crate::device::Precision>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the raw logits (before any Dream shift) for a token sequence as JSON: {"logits": [[V floats] per id]}.
    Logits {
        /// HF checkpoint folder (config.json, *.safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Comma-separated token ids, e.g. 5,17,99.
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u32>,
        #[arg(long, default_value = "auto", help = device_arg_help())]
        device: String,
    },
    /// Load a checkpoint and save it again in the same layout and dtypes into a new folder.
    /// With a LoRA adapter (an adapter folder as --checkpoint, or --adapter) and --merge: the
    /// merged model, in the base's layout.
    Convert {
        #[arg(long)]
        checkpoint: PathBuf,
        /// A LoRA adapter folder (PEFT format) on top of --checkpoint.
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// Fold the LoRA adapter into the weights (required when there is an adapter).
        #[arg(long)]
        merge: bool,
        /// Output folder (must not exist or be empty; never the input).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "cpu", help = device_arg_help())]
        device: String,
    },
    /// Describe a checkpoint (architecture, parameters, dtype, vocabulary, special ids, memory estimate).
    Inspect {
        #[arg(long)]
        checkpoint: PathBuf,
    },
    /// Write the demo's generated world (forget, retain, world_facts, real_people) as TOFU JSON lines.
    DemoWorld {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// BPE vocabulary size of the tokenizer trained on the world.
        #[arg(long, default_value_t = 2048)]
        vocab_size: usize,
    },
    /// MDLM fine-tuning of a tiny LLaDA-architecture model from random init on a demo-world folder.
    Finetune {
        #[command(flatten)]
        args: crate::finetune::FinetuneArgs,
        #[arg(long, default_value = "cpu", help = device_arg_help())]
        device: String,
    },
    /// Answer a free prompt with the model's own sampler (LLaDA: low-confidence remasking; Dream: entropy order).
    Generate {
        #[arg(long)]
        checkpoint: PathBuf,
        /// A LoRA adapter folder (PEFT format) merged into --checkpoint first.
        #[arg(long)]
        adapter: Option<PathBuf>,
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// Denoising steps (default: one per new token).
        #[arg(long)]
        steps: Option<usize>,
        /// LLaDA block length (default: the whole answer).
        #[arg(long)]
        block_size: Option<usize>,
        /// 0 = greedy and deterministic.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "auto", help = device_arg_help())]
        device: String,
    },
    /// Unlearn a forget set (MDU or a baseline); events as JSON lines, the run directory on disk.
    Unlearn(crate::unlearn::cli::UnlearnArgs),
    /// Run MDU at several τ (and baselines) and write the trade-off table (CSV and Markdown).
    Sweep(crate::unlearn::cli::SweepArgs),
    /// Evaluate any model on TOFU-format files (ROUGE-L, probabilities, truth ratios, utility).
    Eval(crate::eval::cli::EvalArgs),
    /// Token-level KL along the denoising trajectory, with token roles (trace.jsonl, role_means.json).
    Trace(crate::inside::cli::TraceArgs),
    /// Try to get forgotten answers back along other decoding paths; the worst case per item.
    Leakage(crate::inside::cli::LeakageArgs),
    /// List the compute devices this machine offers.
    Devices,
    /// ROUGE-L of JSON lines {"reference": …, "candidate": …}: one JSON line {"precision","recall","fmeasure"} per input line.
    Score(crate::score::ScoreArgs),
    /// Training-step throughput (MDLM SFT step: forward, backward, AdamW) on the demo model's shape; prints one JSON line.
    BenchTrain(crate::bench::BenchTrainArgs),
    /// The MDU masked KL on one device: WGSL kernel against the composite tensor ops, forward and
    /// forward + backward, per `NxV` shape; prints one JSON line per shape.
    BenchKl(crate::bench::BenchKlArgs),
    /// GPU parity checks (forward, one MDU step, the masked KL) against the CPU, then the MDU
    /// step benchmark; `--gpu` checks every CUDA device and hardware wgpu adapter.
    Selftest(crate::selftest::SelftestArgs),
    /// One MDU unlearning step (anchor pass, forget KL, retain NLL, AdamW) on a 1B-shaped LLaDA
    /// with random weights; prints one JSON line (tokens/s, step times, precision).
    BenchStep(crate::bench::step::BenchStepArgs),
    /// Forward-pass throughput on a preset LLaDA shape (random weights); prints one JSON line.
    BenchForward {
        #[arg(long, value_enum, default_value = "tiny")]
        preset: BenchPreset,
        #[arg(long, default_value = "cpu", help = device_arg_help())]
        device: String,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[arg(long, default_value_t = 5)]
        iters: usize,
    },
}

fn device_arg_help() -> String {
    format!("Compute device: {}", device_help())
}

pub fn run(cli: Cli) -> Result<()> {
    // Before any device is touched: CubeCL reads its configuration (caches) at first use.
    crate::kernel_runtime::init();
    if let Some(precision) = cli.precision {
        crate::device::set_precision(precision);
    }
    match cli.command {
        #[cfg(feature = "gui")]
        None => {
            crate::gui::run().map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
        }
        #[cfg(not(feature = "gui"))]
        None => bail!(
            "this is a headless build of mdu (no `gui` feature): it has no window; see `mdu --help` for its subcommands"
        ),
        Some(Command::Logits {
            checkpoint,
            ids,
            device,
        }) => {
            let device = DeviceChoice::parse(&device).map_err(anyhow::Error::msg)?;
            let budget = device.memory_budget();
            let rows = device.run(LogitsTask {
                dir: checkpoint,
                ids,
                budget,
            })?;
            let json = serde_json::json!({ "logits": rows });
            println!("{}", serde_json::to_string(&json)?);
            Ok(())
        }
        Some(Command::Convert {
            checkpoint,
            adapter,
            merge,
            out,
            device,
        }) => {
            let device = DeviceChoice::parse(&device).map_err(anyhow::Error::msg)?;
            let budget = device.memory_budget();
            device.run(ConvertTask {
                dir: checkpoint.clone(),
                adapter,
                merge,
                out: out.clone(),
                budget,
            })?;
            eprintln!("saved {} -> {}", checkpoint.display(), out.display());
            Ok(())
        }
        Some(Command::Inspect { checkpoint }) => inspect(&checkpoint),
        Some(Command::Generate {
            checkpoint,
            adapter,
            prompt,
            max_new_tokens,
            steps,
            block_size,
            temperature,
            seed,
            device,
        }) => {
            let sampler = crate::diffusion::sampler::SamplerConfig {
                max_new_tokens,
                block_size: block_size.unwrap_or(max_new_tokens),
                steps: steps.unwrap_or(max_new_tokens),
                temperature,
                suppress_tokens: vec![],
                seed,
                remasking: Default::default(),
            };
            generate(checkpoint, adapter, prompt, sampler, &device)
        }
        Some(Command::Finetune { args, device }) => {
            let device = DeviceChoice::parse(&device).map_err(anyhow::Error::msg)?;
            device.run(crate::finetune::FinetuneTask(args))
        }
        Some(Command::DemoWorld {
            out,
            seed,
            vocab_size,
        }) => demo_world(&out, seed, vocab_size),
        Some(Command::Devices) => {
            print_devices();
            Ok(())
        }
        Some(Command::Selftest(args)) => crate::selftest::selftest(args),
        Some(Command::BenchStep(args)) => crate::bench::step::bench_step(args),
        Some(Command::Unlearn(args)) => crate::unlearn::cli::unlearn(args),
        Some(Command::Sweep(args)) => crate::unlearn::cli::sweep(args),
        Some(Command::Eval(args)) => crate::eval::cli::eval(args),
        Some(Command::Trace(args)) => crate::inside::cli::trace(args),
        Some(Command::Leakage(args)) => crate::inside::cli::leakage(args),
        Some(Command::Score(args)) => crate::score::run(args),
        Some(Command::BenchTrain(args)) => crate::bench::bench_train(args),
        Some(Command::BenchKl(args)) => crate::bench::bench_kl(args),
        Some(Command::BenchForward {
            preset,
            device,
            warmup,
            iters,
        }) => {
            let choice = DeviceChoice::parse(&device).map_err(anyhow::Error::msg)?;
            let report = choice.run(ForwardBench {
                preset,
                warmup,
                iters,
                device_name: choice.to_string(),
            });
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}

/// `mdu demo-world`: the generated world's splits and their tokenizer, written to `out`.
fn demo_world(out: &std::path::Path, seed: u64, vocab_size: usize) -> Result<()> {
    let splits = crate::demo::Splits::generate(seed);
    splits.write(out)?;
    let tokenizer =
        crate::demo::tokenizer::train(&splits, vocab_size).map_err(anyhow::Error::msg)?;
    crate::demo::tokenizer::write_files(&tokenizer, out).map_err(anyhow::Error::msg)?;
    eprintln!("tokenizer: {} tokens", tokenizer.get_vocab_size(true));
    for (name, items) in splits.named() {
        eprintln!("{name}: {} items", items.len());
    }
    Ok(())
}

/// `mdu devices`: one line per device, and why CUDA is missing.
fn print_devices() {
    for (choice, label) in list_devices() {
        println!("{choice}\t{label}");
    }
    if let Some(why) = crate::device::cuda_unavailable_reason() {
        println!("(cuda unavailable: {why})");
    }
}

/// `mdu generate`: one answer to a chat prompt.
fn generate(
    dir: PathBuf,
    adapter: Option<PathBuf>,
    prompt: String,
    sampler: crate::diffusion::sampler::SamplerConfig,
    device: &str,
) -> Result<()> {
    let device = DeviceChoice::parse(device).map_err(anyhow::Error::msg)?;
    let budget = device.memory_budget();
    let answer = device.run(GenerateTask {
        dir,
        adapter,
        prompt,
        sampler,
        budget,
    })?;
    println!("{answer}");
    Ok(())
}

struct LogitsTask {
    dir: PathBuf,
    ids: Vec<u32>,
    budget: checkpoint::MemoryBudget,
}

impl BackendTask for LogitsTask {
    type Output = Result<Vec<Vec<f32>>>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output {
        let ckpt = Checkpoint::open(&self.dir)?;
        let vocab = ckpt.config.vocab_size;
        if let Some(bad) = self.ids.iter().find(|&&id| id as usize >= vocab) {
            bail!("--ids: token id {bad} is outside the model's vocabulary of {vocab}");
        }
        let model = ckpt.load::<B>(device, &self.budget)?;
        let flat = model.logits_host(&[self.ids.clone()], None, device);
        Ok(flat.chunks(vocab).map(<[f32]>::to_vec).collect())
    }
}

struct GenerateTask {
    dir: PathBuf,
    adapter: Option<PathBuf>,
    prompt: String,
    sampler: crate::diffusion::sampler::SamplerConfig,
    budget: checkpoint::MemoryBudget,
}

impl BackendTask for GenerateTask {
    type Output = Result<String>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output {
        use crate::diffusion::sampler::{generate_by_architecture, SamplerTokens};
        let files = checkpoint::ModelFiles::open_with(&self.dir, self.adapter.as_deref())?;
        let tokenizer = &files.tokenizer;
        let model = files.load::<B>(device, &self.budget)?;
        let text = tokenizer
            .apply_chat_template(&[crate::tokenizer::ChatMessage::user(&self.prompt)], true)?;
        let prompt = tokenizer.encode(&text)?;
        let tokens = SamplerTokens::from(&tokenizer.special);
        let ids =
            generate_by_architecture(&model, &[prompt], &tokens, &self.sampler, device, |_| {});
        Ok(tokenizer.decode(&ids[0], true)?.trim().to_string())
    }
}

struct ConvertTask {
    dir: PathBuf,
    adapter: Option<PathBuf>,
    merge: bool,
    out: PathBuf,
    budget: checkpoint::MemoryBudget,
}

impl BackendTask for ConvertTask {
    type Output = Result<()>;
    fn run<B: EngineBackend>(self, device: &B::Device) -> Self::Output {
        let files = checkpoint::ModelFiles::open_with(&self.dir, self.adapter.as_deref())?;
        match (&files.adapter, self.merge) {
            (Some(adapter), false) => bail!(
                "{}: this is a LoRA adapter; pass --merge to write the model with it folded in",
                adapter.dir.display()
            ),
            (None, true) => bail!(
                "--merge: {} is a full model and no --adapter was given; there is nothing to merge",
                self.dir.display()
            ),
            _ => {}
        }
        let model = files.load::<B>(device, &self.budget)?;
        // Side files (config, tokenizer) come from the full model, never from an adapter folder.
        let base = &files.checkpoint;
        checkpoint::save(&model, &base.layout, Some(&base.dir), &self.out)?;
        Ok(())
    }
}

fn inspect(dir: &std::path::Path) -> Result<()> {
    let files = checkpoint::ModelFiles::open(dir)?;
    let (ckpt, tokenizer) = (&files.checkpoint, &files.tokenizer);
    let c = &ckpt.config;
    let info = serde_json::json!({
        "family": crate::model::family::family_of_dir(c, dir),
        "architecture": c.architecture.name(),
        "parameters": c.num_parameters(),
        "active_parameters_per_token": c.active_parameters(),
        "dtype": ckpt.layout.main_dtype().name(),
        "sharded": ckpt.layout.sharded,
        "files": ckpt.layout.files,
        "vocab_rows": c.vocab_size,
        "tokenizer_vocab": tokenizer.vocab_size(),
        "special_ids": tokenizer.special,
        "config": c,
        "estimated_bytes_f32": checkpoint::estimate_bytes(c, 4),
    });
    println!("{}", serde_json::to_string_pretty(&info)?);
    Ok(())
}
