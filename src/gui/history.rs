//! Past runs: every run directory under the runs folder, with its settings and outcome, read from
//! `config.toml` and `summary.json` (so the list survives restarts and includes CLI runs there).

use std::path::{Path, PathBuf};

use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::Method;

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub dir: PathBuf,
    pub name: String,
    pub method: Method,
    pub tau: f64,
    pub learning_rate: f64,
    pub steps: usize,
    pub seed: u64,
    /// (forget, retain) ROUGE-L recall before and after, when the run finished.
    pub before: Option<(f64, f64)>,
    pub after: Option<(f64, f64)>,
    pub utility_after: Option<f64>,
    pub finished: bool,
}

impl HistoryEntry {
    pub fn read(dir: &Path) -> Option<Self> {
        let config = UnlearnConfig::from_toml_file(&dir.join("config.toml")).ok()?;
        let summary: Option<serde_json::Value> = std::fs::read_to_string(dir.join("summary.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let pair = |when: &str| {
            let s = summary.as_ref()?;
            Some((
                s[when]["forget"]["rougeL_recall"].as_f64()?,
                s[when]["retain"]["rougeL_recall"].as_f64()?,
            ))
        };
        Some(Self {
            name: dir.file_name()?.to_string_lossy().into_owned(),
            dir: dir.to_path_buf(),
            method: config.method,
            tau: config.params.tau,
            learning_rate: config.learning_rate,
            steps: config.steps,
            seed: config.seed,
            before: pair("before"),
            after: pair("after"),
            utility_after: summary
                .as_ref()
                .and_then(|s| s["after"]["model_utility"].as_f64()),
            finished: summary.is_some(),
        })
    }

    /// "MDU τ=0.5", "GA", …
    pub fn short_label(&self) -> String {
        match self.method {
            Method::Mdu => format!("MDU τ={}", self.tau),
            m => super::setup::method_title(m).to_string(),
        }
    }
}

/// Every run under `root`, newest first (names start with a timestamp).
pub fn scan(root: &Path) -> Vec<HistoryEntry> {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<HistoryEntry> = dirs
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|p| HistoryEntry::read(&p))
        .collect();
    out.sort_by(|a, b| b.name.cmp(&a.name));
    out
}

/// A new run folder's name: UTC time, then the method (and τ), e.g. `20261123-124501-mdu-tau0.5`.
pub fn run_name(config: &UnlearnConfig, now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let method = match config.method {
        Method::Mdu => format!("mdu-tau{}", config.params.tau),
        m => m.name().to_string(),
    };
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{method}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
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
