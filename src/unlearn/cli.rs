//! `mdu unlearn` and `mdu sweep`: the engine headless, events as JSON lines on stdout, a
//! progress bar on a terminal, Ctrl-C stopping cleanly.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::config::UnlearnConfig;
use super::engine::{self, Stopped};
use super::events::{Event, StopFlag};
use super::methods::{KlDirection, Method};

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
    /// The retain-only model, for TOFU forget quality.
    #[arg(long)]
    pub retain_model: Option<PathBuf>,
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
}

pub fn unlearn(args: UnlearnArgs) -> Result<()> {
    let (config, run_dir, resume) = match &args.resume {
        Some(dir) => {
            let config = UnlearnConfig::from_toml_file(&dir.join("config.toml"))
                .with_context(|| format!("{}: not a run directory", dir.display()))?;
            (config, dir.clone(), true)
        }
        None => {
            let mut config = args.run.resolve()?;
            if let Some(m) = args.method {
                config.method = m;
            }
            if let Some(t) = args.tau {
                config.params.tau = t;
            }
            let dir = args.out.clone().unwrap_or_else(|| default_run_dir(&config));
            (config, dir, false)
        }
    };
    let stop = StopFlag::new();
    install_ctrl_c(&stop);
    run_printing(config, run_dir, resume, &stop, args.quiet).map(|_| ())
}

/// Runs the engine on this thread, printing events; returns the summary.
pub fn run_printing(
    config: UnlearnConfig,
    run_dir: PathBuf,
    resume: bool,
    stop: &StopFlag,
    quiet: bool,
) -> Result<serde_json::Value> {
    use std::io::Write;
    let progress = indicatif::ProgressBar::new(config.steps as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} {bar:30} {pos}/{len} · {msg} · ETA {eta}",
        )
        .expect("template"),
    );
    let mut summary = serde_json::Value::Null;
    let mut sink = |event: Event| {
        match &event {
            Event::Step { step, loss, .. } => {
                progress.set_position(*step as u64);
                progress.set_message(format!("loss {loss:.4}"));
            }
            Event::Phase { phase } => progress.set_prefix(phase.clone()),
            Event::Warning { message } => progress.println(format!("warning: {message}")),
            Event::Finished { summary: s, .. } => summary = s.clone(),
            Event::Stopped { run_dir, step } => progress.println(format!("stopped at step {step}; the run directory {} is complete up to there (resume with --resume)", run_dir.display())),
            _ => {}
        }
        let line = match &event {
            Event::Samples { .. } => None, // per-sample details go to samples_*.jsonl
            _ if quiet && !matches!(event, Event::Finished { .. }) => None,
            _ => serde_json::to_string(&event).ok(),
        };
        if let Some(line) = line {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    };
    // Kernel preparation arrives from a ticker thread while this one waits on the backend.
    let kernels = {
        let progress = progress.clone();
        let told = std::sync::atomic::AtomicBool::new(false);
        engine::kernel_events(&config.device, move |event| {
            if let Event::Kernels { message, .. } = &event {
                // The progress line gets the counts; the note on the cache is told once.
                let (counts, note) = message.split_once(" (").unwrap_or((message, ""));
                if !note.is_empty() && !told.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    progress.println(format!("{counts} ({note}"));
                }
                progress.set_message(counts.to_string());
            }
            if let (false, Ok(line)) = (quiet, serde_json::to_string(&event)) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        })
    };
    let result = engine::run(config, run_dir, resume, &mut sink, stop);
    drop(kernels);
    progress.finish_and_clear();
    match result {
        Ok(()) => Ok(summary),
        Err(e) if e.downcast_ref::<Stopped>().is_some() => Err(e),
        Err(e) => Err(e),
    }
}

/// `<data dir>/mdu-workbench/runs/<unix time>-<method>`.
pub fn default_run_dir(config: &UnlearnConfig) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    runs_root().join(format!("{secs}-{}", config.method))
}

pub fn runs_root() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("mdu-workbench")
        .join("runs")
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
    /// Baselines run beside MDU (none, or any of ga, graddiff, npo).
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
    let mut settings: Vec<(Method, Option<f64>)> =
        taus.iter().map(|&t| (Method::Mdu, Some(t))).collect();
    settings.extend(args.baselines.iter().map(|&m| (m, None)));
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
    for (method, tau) in settings {
        let one = |lr: f64, seed: u64| -> Result<SweepRow> {
            let mut c = base.clone();
            c.method = method;
            if let Some(t) = tau {
                c.params.tau = t;
            }
            c.learning_rate = lr;
            c.seed = seed;
            let name = match tau {
                Some(t) => format!("{method}-tau{t}-lr{lr:e}-seed{seed}"),
                None => format!("{method}-lr{lr:e}-seed{seed}"),
            };
            let dir = args.out.join(&name);
            let summary = if dir.join("summary.json").exists() {
                eprintln!("{name}: already done, reusing its summary.json");
                serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json"))?)?
            } else {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
                eprintln!("{name}: running");
                run_printing(c, dir.clone(), false, &stop, true)?
            };
            Ok(SweepRow {
                method,
                tau,
                lr,
                seed,
                summary,
            })
        };
        let first: Vec<SweepRow> = lrs_for(method)?
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

pub struct SweepRow {
    pub method: Method,
    pub tau: Option<f64>,
    pub lr: f64,
    pub seed: u64,
    pub summary: serde_json::Value,
}

pub struct Table {
    pub csv: String,
    pub markdown: String,
}

fn metric(summary: &serde_json::Value, when: &str, split: &str, key: &str) -> Option<f64> {
    summary.get(when)?.get(split)?.get(key)?.as_f64()
}

fn top(summary: &serde_json::Value, when: &str, key: &str) -> Option<f64> {
    summary.get(when)?.get(key)?.as_f64()
}

fn ratio_of(summary: &serde_json::Value, split: &str) -> Option<f64> {
    Some(
        metric(summary, "after", split, "rougeL_recall")?
            / metric(summary, "before", split, "rougeL_recall")?,
    )
}

/// The learning rate a method is reported at, from its first-seed runs (one per rate): the rate
/// that brings forget ROUGE-L to `forget_target` × before with the most retain kept; when none
/// does, the rate that forgets most. One rule for every method, so GA cannot win by not forgetting.
pub fn pick_lr(first_seed_runs: &[&SweepRow], forget_target: f64) -> Option<f64> {
    let scored: Vec<(f64, f64, f64)> = first_seed_runs
        .iter()
        .filter_map(|r| {
            Some((
                r.lr,
                ratio_of(&r.summary, "forget")?,
                ratio_of(&r.summary, "retain")?,
            ))
        })
        .collect();
    // Ties (e.g. every rate collapses to 0 / 0) go to the smallest, gentlest rate, whatever the
    // order the runs come in.
    let better_retain = |a: &&(f64, f64, f64), b: &&(f64, f64, f64)| {
        a.2.total_cmp(&b.2)
            .then(b.1.total_cmp(&a.1))
            .then(b.0.total_cmp(&a.0))
    };
    let better_forget = |a: &&(f64, f64, f64), b: &&(f64, f64, f64)| {
        b.1.total_cmp(&a.1)
            .then(a.2.total_cmp(&b.2))
            .then(b.0.total_cmp(&a.0))
    };
    let reaching = scored.iter().filter(|s| s.1 <= forget_target);
    if let Some(best) = reaching.max_by(better_retain) {
        return Some(best.0);
    }
    scored.iter().max_by(better_forget).map(|s| s.0)
}

/// One line per (method, τ): means over seeds at the learning rate `pick_lr` chooses from the
/// first seed's runs.
pub fn trade_off_table(rows: &[SweepRow], forget_target: f64) -> Table {
    use std::collections::BTreeMap;
    type Key = (String, Option<String>);
    let mut groups: BTreeMap<Key, BTreeMap<String, Vec<&SweepRow>>> = BTreeMap::new();
    let mut order: Vec<Key> = Vec::new();
    for r in rows {
        let key = (r.method.name().to_string(), r.tau.map(|t| format!("{t}")));
        if !order.contains(&key) {
            order.push(key.clone());
        }
        groups
            .entry(key)
            .or_default()
            .entry(format!("{:e}", r.lr))
            .or_default()
            .push(r);
    }
    let mean = |v: &[Option<f64>]| -> Option<f64> {
        let v: Vec<f64> = v.iter().flatten().copied().collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let header = [
        "method",
        "tau",
        "lr",
        "seeds",
        "forget_before",
        "forget_after",
        "forget_ratio",
        "retain_before",
        "retain_after",
        "retain_ratio",
        "model_utility_after",
        "forget_quality_after",
        "forget_after_sd",
        "retain_after_sd",
    ];
    let mut csv = header.join(",") + "\n";
    let mut md = String::from("| method | τ | lr | seeds | forget R-L before → after (×) | retain R-L before → after (×) | model utility after | forget quality after |\n|---|---|---|---|---|---|---|---|\n");
    // After-values are means over seeds ± their standard deviation.
    for key in order {
        let by_lr = &groups[&key];
        let first_seed = by_lr.values().flatten().map(|r| r.seed).min();
        let firsts: Vec<&SweepRow> = by_lr
            .values()
            .flatten()
            .filter(|r| Some(r.seed) == first_seed)
            .copied()
            .collect();
        let Some(picked) = pick_lr(&firsts, forget_target) else {
            continue;
        };
        let lr = &format!("{picked:e}");

        let runs = &by_lr[lr];
        let get = |when: &str, split: &str| {
            mean(
                &runs
                    .iter()
                    .map(|r| metric(&r.summary, when, split, "rougeL_recall"))
                    .collect::<Vec<_>>(),
            )
        };
        // Sample standard deviation over seeds (n − 1), absent for a single seed.
        let sd = |split: &str| -> Option<f64> {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| metric(&r.summary, "after", split, "rougeL_recall"))
                .collect();
            (v.len() > 1).then(|| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
            })
        };
        let (f_sd, r_sd) = (sd("forget"), sd("retain"));
        let (fb, fa, rb, ra) = (
            get("before", "forget"),
            get("after", "forget"),
            get("before", "retain"),
            get("after", "retain"),
        );
        let mu = mean(
            &runs
                .iter()
                .map(|r| top(&r.summary, "after", "model_utility"))
                .collect::<Vec<_>>(),
        );
        let fq = mean(
            &runs
                .iter()
                .map(|r| top(&r.summary, "after", "forget_quality"))
                .collect::<Vec<_>>(),
        );
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let f = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into());
        let e = |v: Option<f64>| v.map(|v| format!("{v:.2e}")).unwrap_or_else(|| "–".into());
        let tau = key.1.clone().unwrap_or_default();
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            key.0,
            tau,
            lr,
            runs.len(),
            f(fb),
            f(fa),
            f(ratio(fa, fb)),
            f(rb),
            f(ra),
            f(ratio(ra, rb)),
            f(mu),
            e(fq),
            f(f_sd),
            f(r_sd)
        ));
        let pm = |v: Option<f64>| v.map(|v| format!(" ± {v:.3}")).unwrap_or_default();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} → {}{} (×{}) | {} → {}{} (×{}) | {} | {} |\n",
            Method::ALL
                .iter()
                .find(|m| m.name() == key.0)
                .map(|m| m.label())
                .unwrap_or(&key.0),
            if tau.is_empty() {
                "–".to_string()
            } else {
                tau
            },
            lr,
            runs.len(),
            f(fb),
            f(fa),
            pm(f_sd),
            f(ratio(fa, fb)),
            f(rb),
            f(ra),
            pm(r_sd),
            f(ratio(ra, rb)),
            f(mu),
            e(fq)
        ));
    }
    Table { csv, markdown: md }
}

/// Reads a finished run's summary.
pub fn read_summary(run_dir: &Path) -> Result<serde_json::Value> {
    let path = run_dir.join("summary.json");
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?,
    )?)
}
