//! A run's folder, the one owner of its file names: how runs are named and where they go, the
//! resolved config and machine facts, the metric logs (JSON lines as they come, CSV at the end),
//! checkpoints, and the typed summary that History and `mdu sweep` read back.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::config::UnlearnConfig;
use super::inputs::Inputs;
use super::methods::{Method, MethodParams};
use crate::data::write_atomic;
use crate::eval::protocol::EvalReport;

/// `<data dir>/mdu-workbench/runs`: where runs go unless the user says otherwise.
pub fn default_runs_root() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("mdu-workbench")
        .join("runs")
}

/// A new run folder's name: UTC time, then the method (and τ), e.g. `20261123-124501-mdu-tau0.5`,
/// so that names sort oldest to newest.
pub fn run_name(config: &UnlearnConfig, now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        setting_name(config.method, Some(config.params.tau))
    )
}

/// `mdu-tau0.5` for MDU (its τ), the method's name for the baselines.
pub fn setting_name(method: Method, tau: Option<f64>) -> String {
    match (method, tau) {
        (Method::Mdu, Some(t)) => format!("mdu-tau{t}"),
        (m, _) => m.name().to_string(),
    }
}

/// A new folder under `root` for a run of `config` started now.
pub fn new_run_dir(root: &Path, config: &UnlearnConfig) -> PathBuf {
    root.join(run_name(config, std::time::SystemTime::now()))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// What `summary.json` holds once a run has finished (fields in the file's key order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<EvalReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<EvalReport>,
    pub method: Method,
    pub params: MethodParams,
    /// What each score label means.
    pub protocols: serde_json::Value,
    pub seed: u64,
    pub steps: usize,
    pub wall_s: f64,
}

impl RunSummary {
    /// ROUGE-L recall of `split` before or after (`when`).
    pub fn rouge_l(&self, when: When, split: &str) -> Option<f64> {
        Some(self.report(when)?.splits.get(split)?.rouge_l_recall)
    }

    pub fn report(&self, when: When) -> Option<&EvalReport> {
        match when {
            When::Before => self.before.as_ref(),
            When::After => self.after.as_ref(),
        }
    }
}

/// Which full evaluation of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Before,
    After,
}

/// Reads a finished run's `summary.json`.
pub fn read_summary(run_dir: &Path) -> Result<RunSummary> {
    let path = run_dir.join(RunDir::SUMMARY);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
}

/// The folder of one run, and every file name in it.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub const CONFIG: &'static str = "config.toml";
    pub const RUN_INFO: &'static str = "run_info.json";
    pub const SUMMARY: &'static str = "summary.json";
    pub const SUMMARY_BEFORE: &'static str = "summary_before.json";
    pub const METRICS_JSONL: &'static str = "metrics.jsonl";
    pub const METRICS_CSV: &'static str = "metrics.csv";
    pub const BEST_CHECKPOINT: &'static str = "best_checkpoint.json";
    pub const MODEL: &'static str = "model";

    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Creates the folder, refusing one inside the input checkpoint, or one that is not empty
    /// unless resuming, and checks that it is writable.
    pub fn prepare(path: &Path, inputs: &Inputs, resume: bool) -> Result<Self> {
        if let Ok(canon) = path.canonicalize() {
            if inputs
                .checkpoint
                .canonicalize()
                .is_ok_and(|c| canon.starts_with(&c))
            {
                bail!(
                    "{}: the run directory is inside the input checkpoint; choose another folder",
                    path.display()
                );
            }
        }
        if path.exists() && !resume {
            let non_empty = std::fs::read_dir(path)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true);
            if non_empty {
                bail!(
                    "{}: the run directory exists and is not empty; choose a new one, or pass --resume",
                    path.display()
                );
            }
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("{}: cannot create the run directory", path.display()))?;
        let probe = path.join(".write-test");
        std::fs::write(&probe, b"")
            .with_context(|| format!("{}: the run directory is not writable", path.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(Self::new(path.to_path_buf()))
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `samples_before.jsonl` / `samples_after.jsonl`: per-item details of a full evaluation.
    pub fn samples_file(&self, when: &str) -> PathBuf {
        self.path.join(format!("samples_{when}.jsonl"))
    }

    pub fn checkpoint_dir(&self, step: usize) -> PathBuf {
        self.path.join(format!("checkpoint-{step}"))
    }

    pub fn model_dir(&self) -> PathBuf {
        self.path.join(Self::MODEL)
    }

    /// Writes the folder `dir` of this run through a staging folder beside it, renamed into place
    /// once `write` has filled it: a failed write (a full disk) leaves an earlier `dir` and every
    /// other folder as they were, and no partial folder behind.
    pub fn replace_folder(
        &self,
        dir: &Path,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let name = dir
            .file_name()
            .map_or("folder".into(), |n| n.to_string_lossy());
        let staged = self.path.join(format!(".{name}.partial"));
        let _ = std::fs::remove_dir_all(&staged);
        let written = write(&staged).and_then(|()| {
            if dir.exists() {
                std::fs::remove_dir_all(dir)?;
            }
            Ok(std::fs::rename(&staged, dir)?)
        });
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&staged);
        }
        written
    }

    /// `config.toml` (loadable with `--config`, used by `--resume`) and `run_info.json` (what the
    /// config resolved to on this machine: inputs, device, dtype, versions).
    pub fn write_resolved_config(&self, config: &UnlearnConfig, info: &RunInfo) -> Result<()> {
        write_atomic(&self.file(Self::CONFIG), config.to_toml().as_bytes())?;
        let inputs = info.inputs;
        let value = serde_json::json!({
            "checkpoint": inputs.checkpoint,
            "forget": inputs.forget,
            "retain": inputs.retain,
            "eval_retain": inputs.eval_retain,
            "eval_files": inputs.eval_files,
            "retain_model": inputs.retain_model,
            "holdout": inputs.holdout,
            "architecture": info.architecture,
            "parameters": info.parameters,
            "device": info.device,
            "checkpoint_dtype": info.checkpoint_dtype,
            // Weights and activations; softmax, KL, losses and AdamW moments are f32 regardless.
            "storage_dtype": info.storage_dtype,
            "accumulation_dtype": "f32",
            "seed": config.seed,
            "mdu_workbench": env!("CARGO_PKG_VERSION"),
            "burn": "0.21.0",
        });
        write_json(&self.file(Self::RUN_INFO), &value)
    }

    /// The "before" report a resumed run reuses.
    pub fn read_before(&self) -> Result<Option<EvalReport>> {
        match std::fs::read_to_string(self.file(Self::SUMMARY_BEFORE)) {
            Ok(text) => Ok(Some(serde_json::from_str(&text)?)),
            Err(_) => Ok(None),
        }
    }

    pub fn write_before(&self, report: &EvalReport) -> Result<()> {
        write_json(
            &self.file(Self::SUMMARY_BEFORE),
            &serde_json::to_value(report)?,
        )
    }

    pub fn write_summary(&self, summary: &serde_json::Value) -> Result<()> {
        write_json(&self.file(Self::SUMMARY), summary)
    }

    /// `open_unlearning.json`: the before/after numbers under open-unlearning's metric names, to
    /// compare with its published tables.
    pub fn write_open_unlearning(
        &self,
        before: Option<&EvalReport>,
        after: Option<&EvalReport>,
    ) -> Result<()> {
        let export = |r: Option<&EvalReport>| r.map(EvalReport::open_unlearning_names);
        write_json(
            &self.path.join("open_unlearning.json"),
            &serde_json::json!({ "before": export(before), "after": export(after) }),
        )
    }

    /// Points `best_checkpoint.json` at checkpoint `step`.
    /// The step of the best checkpoint so far (`best_checkpoint.json`), if any.
    /// The step of the newest complete checkpoint (the one `--resume` continues from).
    pub fn resume_step(&self) -> Option<usize> {
        let step_of = |state: &serde_json::Value| state["step"].as_u64().unwrap_or(0) as usize;
        let (_, state) = crate::train::resume::latest(&self.path, step_of).ok()??;
        Some(step_of(&state))
    }

    /// Bytes of every file under the run folder.
    pub fn size_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    Ok(_) => e.metadata().map_or(0, |m| m.len()),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.path)
    }

    pub fn best_step(&self) -> Option<usize> {
        let text = std::fs::read_to_string(self.file(Self::BEST_CHECKPOINT)).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["step"].as_u64().map(|s| s as usize)
    }

    /// Removes the `checkpoint-N/` folders beyond the newest `keep` (0 keeps every one), never the
    /// best one; returns the folders removed.
    pub fn prune_checkpoints(&self, keep: usize) -> Result<Vec<PathBuf>> {
        if keep == 0 {
            return Ok(Vec::new());
        }
        let mut steps: Vec<usize> = std::fs::read_dir(&self.path)?
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("checkpoint-")?.parse().ok()
            })
            .collect();
        steps.sort_unstable();
        let best = self.best_step();
        let newest = &steps[steps.len().saturating_sub(keep)..];
        let mut removed = Vec::new();
        for &step in &steps {
            if !newest.contains(&step) && Some(step) != best {
                let dir = self.checkpoint_dir(step);
                std::fs::remove_dir_all(&dir).with_context(|| {
                    format!("{}: cannot remove an old checkpoint", dir.display())
                })?;
                removed.push(dir);
            }
        }
        Ok(removed)
    }

    pub fn write_best(&self, step: usize, dir: &Path) -> Result<()> {
        write_atomic(&self.file(Self::BEST_CHECKPOINT), serde_json::json!({"step": step, "path": dir, "criterion": "highest live retain minus forget ROUGE-L recall"}).to_string().as_bytes())?;
        Ok(())
    }
}

/// The machine facts `run_info.json` records beside the inputs.
pub struct RunInfo<'a> {
    pub inputs: &'a Inputs,
    pub architecture: &'a str,
    pub parameters: u64,
    pub device: &'a str,
    pub checkpoint_dtype: &'a str,
    pub storage_dtype: &'a str,
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())?;
    Ok(())
}

/// `metrics.jsonl` (appended as steps come) and the rows `metrics.csv` is written from.
pub struct MetricsLog {
    file: std::fs::File,
    csv: PathBuf,
    rows: Vec<serde_json::Value>,
}

impl MetricsLog {
    /// Opens the logs of a run that continues after step `step` (0 for a new run): lines of
    /// later steps (written after the checkpoint a resumed run starts from) are cut away, so
    /// that every step appears once in `metrics.jsonl` and in `metrics.csv`.
    pub fn open(run_dir: &RunDir, step: usize) -> Result<Self> {
        let path = run_dir.file(RunDir::METRICS_JSONL);
        let rows = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let kept = kept_lines(&text, step);
                let mut body = kept.join("\n");
                if !body.is_empty() {
                    body.push('\n');
                }
                write_atomic(&path, body.as_bytes())?;
                rows_of(&kept)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        Ok(Self {
            file,
            csv: run_dir.file(RunDir::METRICS_CSV),
            rows,
        })
    }

    /// One JSON line in `metrics.jsonl`.
    pub fn append(&mut self, value: &serde_json::Value) -> Result<()> {
        use std::io::Write;
        writeln!(self.file, "{value}")?;
        Ok(())
    }

    /// A step's row for `metrics.csv`.
    pub fn push_row(&mut self, row: serde_json::Value) {
        self.rows.push(row);
    }

    /// `metrics.csv`: one row per step, loss parts and live scores as columns.
    pub fn write_csv(&self) -> Result<()> {
        write_atomic(&self.csv, metrics_csv(&self.rows).as_bytes())?;
        Ok(())
    }
}

/// The lines of `metrics.jsonl` up to and including step `step` (unreadable lines are dropped).
pub fn kept_lines(text: &str, step: usize) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("step")?.as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .collect()
}

/// The CSV rows of logged lines: each step's event, with its live scores when it had some.
fn rows_of(lines: &[&str]) -> Vec<serde_json::Value> {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for line in lines {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match v.get("event").and_then(|e| e.as_str()) {
            Some("step") => rows.push(v),
            Some("eval") => {
                let split =
                    |name: &str| v.pointer(&format!("/report/{name}/rougeL_recall")).cloned();
                let step = v.get("step").cloned();
                let row = rows
                    .iter_mut()
                    .rev()
                    .find(|r| r.get("step") == step.as_ref());
                if let (Some(obj), Some(f), Some(r)) = (
                    row.and_then(|r| r.as_object_mut()),
                    split("forget"),
                    split("retain"),
                ) {
                    obj.insert("live_forget_rougeL_recall".into(), f);
                    obj.insert("live_retain_rougeL_recall".into(), r);
                }
            }
            _ => {}
        }
    }
    rows
}

fn metrics_csv(rows: &[serde_json::Value]) -> String {
    let mut part_names: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get("parts").and_then(|p| p.as_object()))
        .flat_map(|p| p.keys().cloned())
        .collect();
    part_names.sort();
    part_names.dedup();
    let mut out = String::from("step,loss");
    for p in &part_names {
        out.push_str(&format!(",loss_{p}"));
    }
    out.push_str(",lr,grad_norm,tokens_per_s,elapsed_s,live_forget_rougeL_recall,live_retain_rougeL_recall\n");
    let num = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_f64())
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    for r in rows {
        out.push_str(&format!("{},{}", num(r.get("step")), num(r.get("loss"))));
        for p in &part_names {
            out.push_str(&format!(",{}", num(r.get("parts").and_then(|x| x.get(p)))));
        }
        for k in [
            "lr",
            "grad_norm",
            "tokens_per_s",
            "elapsed_s",
            "live_forget_rougeL_recall",
            "live_retain_rougeL_recall",
        ] {
            out.push_str(&format!(",{}", num(r.get(k))));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        // Checked with `date -u -d @$((20415 * 86400)) +%F`.
        assert_eq!(super::civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }
}
