//! `mdu unlearn` and `mdu sweep`: the engine headless, events as JSON lines on stdout, a
//! progress bar on a terminal, Ctrl-C stopping cleanly.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::config::UnlearnConfig;
use super::engine::{self, Stopped};
use super::methods::{KlDirection, Method};
use super::run_dir::{self, read_summary, RunDir};
use super::sweep::{self, pick_lr, trade_off_table, SweepRow};
use crate::events::{Event, StopFlag};

/// Settings shared by `unlearn` and `sweep`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunOptions {
    /// TOML file with any settings (see `configs/`); flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one setting, e.g. `--set params.tau=0.5 --set steps=200` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Use the embedded demo model and files (any path flag still overrides its part).
    #[arg(long)]
    pub demo: bool,
    /// Model folder (HF layout: config.json, *.safetensors, tokenizer files).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// TOFU-format JSON/JSONL file of what to forget.
    #[arg(long)]
    pub forget: Option<PathBuf>,
    /// TOFU-format JSON/JSONL file of what to keep.
    #[arg(long)]
    pub retain: Option<PathBuf>,
    /// Extra evaluation files (real-people / world-facts style utility splits).
    #[arg(long = "eval-file")]
    pub eval_files: Vec<PathBuf>,
    /// The retain-only model, for TOFU forget quality, privleak and the Reference attack.
    #[arg(long)]
    pub retain_model: Option<PathBuf>,
    /// Items the model never saw (TOFU's holdout files): turns on the privacy audit.
    #[arg(long)]
    pub holdout: Option<PathBuf>,
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long = "lr")]
    pub learning_rate: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub kl: Option<KlDirection>,
    #[arg(long, help = format!("Compute device: {}", crate::device::device_help()))]
    pub device: Option<String>,
    #[command(flatten)]
    pub lora: LoraOptions,
    /// Per-block activation checkpointing: keep only each block's input and recompute the block
    /// in the backward pass (auto: on when a step would not fit in free memory).
    #[arg(long, value_name = "auto|on|off")]
    pub checkpointing: Option<super::config::Checkpointing>,
    /// What AdamW keeps its moments in: bf16 halves their memory on a device that stores bf16
    /// (CUDA), stochastically rounded; elsewhere the values are bf16 but the memory is not saved.
    #[arg(long, value_name = "f32|bf16")]
    pub moments: Option<super::config::MomentPrecision>,
}

/// LoRA instead of full fine-tuning: any of these flags turns it on (`[lora]` in a config too).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LoraOptions {
    /// Train LoRA adapters (rank 16, α 32, all seven projections unless set below); the base
    /// weights stay frozen and serve as the anchor.
    #[arg(long)]
    pub lora: bool,
    #[arg(long, value_name = "R")]
    pub lora_rank: Option<usize>,
    #[arg(long, value_name = "ALPHA")]
    pub lora_alpha: Option<f64>,
    #[arg(long, value_name = "P")]
    pub lora_dropout: Option<f64>,
    /// Comma-separated projections: q, k, v, o, gate, up, down.
    #[arg(long, value_name = "LIST")]
    pub lora_targets: Option<String>,
}

impl LoraOptions {
    /// The flags over the config's `[lora]` (or the defaults when a flag turns LoRA on).
    fn apply(&self, config: &mut UnlearnConfig) -> Result<()> {
        let any = self.lora
            || self.lora_rank.is_some()
            || self.lora_alpha.is_some()
            || self.lora_dropout.is_some()
            || self.lora_targets.is_some();
        if !any {
            return Ok(());
        }
        let lora = config.lora.get_or_insert_with(Default::default);
        if let Some(r) = self.lora_rank {
            lora.rank = r;
        }
        if let Some(a) = self.lora_alpha {
            lora.alpha = a;
        }
        if let Some(p) = self.lora_dropout {
            lora.dropout = p;
        }
        if let Some(list) = &self.lora_targets {
            lora.targets = crate::model::LoraTarget::parse_list(list)
                .map_err(|e| anyhow::anyhow!("--lora-targets: {e}"))?;
        }
        Ok(())
    }
}

impl RunOptions {
    /// Defaults → config file → `--set` → flags.
    pub fn resolve(&self) -> Result<UnlearnConfig> {
        let mut c = match &self.config {
            Some(path) => UnlearnConfig::from_toml_file(path)?,
            None => UnlearnConfig::default(),
        };
        for s in &self.set {
            c.set(s)?;
        }
        c.demo |= self.demo;
        let paths = [
            (&self.checkpoint, &mut c.checkpoint),
            (&self.forget, &mut c.forget),
            (&self.retain, &mut c.retain),
            (&self.retain_model, &mut c.retain_model),
            (&self.holdout, &mut c.holdout),
        ];
        for (flag, slot) in paths {
            if let Some(p) = flag {
                *slot = Some(p.clone());
            }
        }
        if !self.eval_files.is_empty() {
            c.eval_files = self.eval_files.clone();
        }
        if let Some(v) = self.steps {
            c.steps = v;
        }
        if let Some(v) = self.learning_rate {
            c.learning_rate = v;
        }
        if let Some(v) = self.batch_size {
            c.batch_size = v;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.kl {
            c.params.kl = v;
        }
        if let Some(v) = &self.device {
            c.device = v.clone();
        }
        self.lora.apply(&mut c)?;
        if let Some(v) = self.checkpointing {
            c.checkpointing = v;
        }
        if let Some(v) = self.moments {
            c.moments = v;
        }
        if let Some(lora) = &c.lora {
            lora.validate().map_err(anyhow::Error::msg)?;
        }
        if let Some(problem) = c.checkpointing_conflict() {
            bail!("{problem}");
        }
        if c.checkpoint.is_none() && !c.demo {
            bail!("no model: pass --checkpoint DIR, or --demo for the embedded demo");
        }
        Ok(c)
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct UnlearnArgs {
    #[command(flatten)]
    pub run: RunOptions,
    #[arg(long)]
    pub method: Option<Method>,
    /// MDU anchor temperature τ (0 = uniform anchor).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Run directory (created; must be new or empty). Default: a new folder under the data directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the stopped run in this directory (its config.toml, newest checkpoint).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Print only the final summary, not every event.
    #[arg(long)]
    pub quiet: bool,
    /// Cut items longer than the model's positions (their answers) instead of refusing them;
    /// one warning counts them.
    #[arg(long)]
    pub truncate: bool,
    /// Do not run: time a short probe of the run (three steps, two items per split) and print
    /// the estimated time of each part as one JSON line.
    #[arg(long, conflicts_with = "resume")]
    pub estimate_time: bool,
}

impl UnlearnArgs {
    /// The run's settings: [`RunOptions::resolve`], then `--method` and `--tau`.
    pub fn config(&self) -> Result<UnlearnConfig> {
        let mut config = self.run.resolve()?;
        if let Some(m) = self.method {
            config.method = m;
        }
        if let Some(t) = self.tau {
            config.params.tau = t;
        }
        config.truncate |= self.truncate;
        Ok(config)
    }
}

pub fn unlearn(args: UnlearnArgs) -> Result<()> {
    let (config, run_dir, resume) = match &args.resume {
        Some(dir) => {
            let config = UnlearnConfig::from_toml_file(&dir.join("config.toml"))
                .with_context(|| format!("{}: not a run directory", dir.display()))?;
            (config, dir.clone(), true)
        }
        None if args.estimate_time => {
            let estimate = super::cost::estimate(&args.config()?, &StopFlag::new())?;
            eprintln!("{}", estimate.describe());
            println!("{}", serde_json::to_string(&estimate)?);
            return Ok(());
        }
        None => {
            let config = args.config()?;
            let dir = args
                .out
                .clone()
                .unwrap_or_else(|| run_dir::new_run_dir(&run_dir::default_runs_root(), &config));
            (config, dir, false)
        }
    };
    let stop = StopFlag::new();
    install_ctrl_c(&stop);
    run_printing(config, run_dir, resume, &stop, args.quiet).map(|_| ())
}

/// Runs the engine on a worker thread, printing its events here; returns the summary.
pub fn run_printing(
    config: UnlearnConfig,
    run_dir: PathBuf,
    resume: bool,
    stop: &StopFlag,
    quiet: bool,
) -> Result<serde_json::Value> {
    let mut printer = Printer::new(config.steps, quiet);
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = engine::spawn_reporting(config, run_dir, resume, tx, stop)
        .context("cannot start the engine thread")?;
    let mut outcome = None;
    for event in rx {
        printer.print(&event);
        match event {
            Event::Finished { summary, .. } => outcome = Some(Ok(summary)),
            Event::Stopped { .. } => outcome = Some(Err(Stopped.into())),
            Event::Failed { error } => outcome = Some(Err(anyhow::anyhow!(error))),
            _ => {}
        }
    }
    let _ = worker.join();
    printer.progress.finish_and_clear();
    outcome.unwrap_or_else(|| {
        Err(anyhow::anyhow!(
            "the engine stopped without finishing the run"
        ))
    })
}

/// Events as JSON lines on stdout (only the summary when quiet; per-item samples never: they
/// are in `samples_*.jsonl`), and a progress bar on the terminal.
struct Printer {
    progress: indicatif::ProgressBar,
    quiet: bool,
    /// The note on the kernel cache was told.
    told_kernels: bool,
}

impl Printer {
    fn new(steps: usize, quiet: bool) -> Self {
        let progress = indicatif::ProgressBar::new(steps as u64);
        progress.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} {bar:30} {pos}/{len} · {msg} · ETA {eta}",
            )
            .expect("template"),
        );
        Self {
            progress,
            quiet,
            told_kernels: false,
        }
    }

    fn print(&mut self, event: &Event) {
        use std::io::Write;
        let progress = &self.progress;
        match event {
            Event::Step { step, loss, .. } => {
                progress.set_position(*step as u64);
                progress.set_message(format!("loss {loss:.4}"));
            }
            Event::Phase { phase } => progress.set_prefix(phase.clone()),
            Event::Warning { message } => progress.println(format!("warning: {message}")),
            Event::Stopped { run_dir, step } => progress.println(format!("stopped at step {step}; the run directory {} is complete up to there (resume with --resume)", run_dir.display())),
            Event::Kernels { message, .. } => {
                // The progress line gets the counts; the note on the cache is told once.
                let (counts, note) = message.split_once(" (").unwrap_or((message, ""));
                if !note.is_empty() && !self.told_kernels {
                    self.told_kernels = true;
                    progress.println(format!("{counts} ({note}"));
                }
                progress.set_message(counts.to_string());
            }
            _ => {}
        }
        let line = match event {
            Event::Samples { .. } => None,
            _ if self.quiet && !matches!(event, Event::Finished { .. }) => None,
            _ => serde_json::to_string(event).ok(),
        };
        if let Some(line) = line {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

static CTRL_C: std::sync::OnceLock<StopFlag> = std::sync::OnceLock::new();

/// Ctrl-C sets `stop` (the engine then finishes its step and leaves a complete run directory);
/// a second Ctrl-C exits at once.
pub fn install_ctrl_c(stop: &StopFlag) {
    #[cfg(unix)]
    {
        let _ = CTRL_C.set(stop.clone());
        extern "C" fn on_sigint(_: libc::c_int) {
            if let Some(flag) = CTRL_C.get() {
                if flag.is_set() {
                    unsafe { libc::_exit(130) };
                }
                flag.request();
            }
        }
        unsafe {
            libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        }
    }
    #[cfg(not(unix))]
    let _ = stop;
}

#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    #[command(flatten)]
    pub run: RunOptions,
    /// MDU τ values (each one an MDU run).
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,1")]
    pub tau: Vec<f64>,
    /// Run no MDU setting (only the baselines), e.g. to split a sweep over two processes that
    /// share `--out`; a last run over everything then reuses every finished run and writes the table.
    #[arg(long)]
    pub no_mdu: bool,
    /// Baselines run beside MDU (none, or any of ga, graddiff, npo, simnpo, wga, undial, rmu).
    #[arg(long, value_delimiter = ',')]
    pub baselines: Vec<Method>,
    /// Learning rates per method; each method's reported row uses its best one (same criterion for all).
    #[arg(long = "lrs", value_delimiter = ',')]
    pub learning_rates: Vec<f64>,
    /// Seeds; reported numbers are means over seeds.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Per-method learning-rate lists, e.g. `--method-lrs ga=1e-5,3e-5,1e-4` (overrides --lrs for that method).
    #[arg(long = "method-lrs", value_name = "METHOD=LR,LR,…")]
    pub method_lrs: Vec<String>,
    /// Sweep directory: one run directory per setting, plus table.csv and table.md.
    #[arg(long)]
    pub out: PathBuf,
    /// Forget target for picking each method's learning rate (forget ROUGE-L as a fraction of
    /// before): the rate that reaches it with the most retain kept, else the one that forgets most.
    #[arg(long, default_value_t = 0.3)]
    pub forget_target: f64,
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    let base = args.run.resolve()?;
    let stop = StopFlag::new();
    install_ctrl_c(&stop);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let taus = if args.no_mdu { &[][..] } else { &args.tau[..] };
    let settings = sweep::settings(taus, &args.baselines);
    let lrs_for = |m: Method| -> Result<Vec<f64>> {
        for spec in &args.method_lrs {
            let (name, list) = spec
                .split_once('=')
                .with_context(|| format!("--method-lrs {spec}: expected METHOD=LR,LR"))?;
            if name.trim() == m.name() {
                return list
                    .split(',')
                    .map(|v| {
                        v.trim()
                            .parse::<f64>()
                            .with_context(|| format!("--method-lrs {spec}: {v:?} is not a number"))
                    })
                    .collect();
            }
        }
        Ok(if args.learning_rates.is_empty() {
            vec![base.learning_rate]
        } else {
            args.learning_rates.clone()
        })
    };
    let mut rows = Vec::new();
    // Ascending, so the seed rates are picked on is the smallest one, as `trade_off_table` reads it.
    let mut seeds = args.seeds.clone();
    seeds.sort_unstable();
    seeds.dedup();
    if seeds.is_empty() {
        seeds.push(0);
    }
    // Fairness: every method's learning rate is picked by the same rule on the smallest seed,
    // then the other seeds run at the picked rate; the table reports means over all seeds.
    for setting in settings {
        let one = |lr: f64, seed: u64| -> Result<SweepRow> {
            let mut c = sweep::config_for(&base, setting);
            c.learning_rate = lr;
            c.seed = seed;
            let name = sweep::run_name(setting, lr, seed);
            let dir = args.out.join(&name);
            let summary = if dir.join(RunDir::SUMMARY).exists() {
                eprintln!("{name}: already done, reusing its summary.json");
                read_summary(&dir)?
            } else {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
                eprintln!("{name}: running");
                serde_json::from_value(run_printing(c, dir.clone(), false, &stop, true)?)?
            };
            Ok(SweepRow {
                method: setting.method,
                tau: setting.tau,
                lr,
                seed,
                summary,
            })
        };
        let first: Vec<SweepRow> = lrs_for(setting.method)?
            .into_iter()
            .map(|lr| one(lr, seeds[0]))
            .collect::<Result<_>>()?;
        let picked = pick_lr(&first.iter().collect::<Vec<_>>(), args.forget_target);
        rows.extend(first);
        if let Some(lr) = picked {
            for &seed in &seeds[1..] {
                rows.push(one(lr, seed)?);
            }
        }
    }
    let table = trade_off_table(&rows, args.forget_target);
    crate::data::write_atomic(&args.out.join("table.csv"), table.csv.as_bytes())?;
    crate::data::write_atomic(&args.out.join("table.md"), table.markdown.as_bytes())?;
    crate::data::write_atomic(&args.out.join("runs.json"), serde_json::to_string_pretty(&rows.iter().map(|r| serde_json::json!({"method": r.method, "tau": r.tau, "lr": r.lr, "seed": r.seed, "summary": r.summary})).collect::<Vec<_>>())?.as_bytes())?;
    print!("{}", table.markdown);
    Ok(())
}
