//! Sweeps: the settings a sweep or the window's trade-off queue runs (MDU at several τ, the
//! baselines beside it), one config per setting, learning rate and seed, and the trade-off table
//! made from the finished runs' summaries. `mdu sweep` and the window share all of it.

use std::collections::BTreeMap;

use super::config::UnlearnConfig;
use super::methods::Method;
use super::run_dir::{RunSummary, When};

/// One setting of a sweep: a method and, for MDU, its τ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub method: Method,
    pub tau: Option<f64>,
}

/// MDU at each τ, then each baseline.
pub fn settings(taus: &[f64], baselines: &[Method]) -> Vec<Setting> {
    taus.iter()
        .map(|&t| Setting {
            method: Method::Mdu,
            tau: Some(t),
        })
        .chain(
            baselines
                .iter()
                .map(|&method| Setting { method, tau: None }),
        )
        .collect()
}

/// `base` with the setting's method and τ.
pub fn config_for(base: &UnlearnConfig, setting: Setting) -> UnlearnConfig {
    let mut c = base.clone();
    c.method = setting.method;
    if let Some(t) = setting.tau {
        c.params.tau = t;
    }
    c
}

/// The configs a trade-off sweep at the base's learning rate and seed runs, in order.
pub fn configs(base: &UnlearnConfig, taus: &[f64], baselines: &[Method]) -> Vec<UnlearnConfig> {
    settings(taus, baselines)
        .into_iter()
        .map(|s| config_for(base, s))
        .collect()
}

/// A sweep run's folder name: `mdu-tau0.5-lr2e-4-seed0`, `ga-lr1e-5-seed1`.
pub fn run_name(setting: Setting, lr: f64, seed: u64) -> String {
    let method = setting.method;
    match setting.tau {
        Some(t) => format!("{method}-tau{t}-lr{lr:e}-seed{seed}"),
        None => format!("{method}-lr{lr:e}-seed{seed}"),
    }
}

/// One finished run of a sweep.
pub struct SweepRow {
    pub method: Method,
    pub tau: Option<f64>,
    pub lr: f64,
    pub seed: u64,
    pub summary: RunSummary,
}

pub struct Table {
    pub csv: String,
    pub markdown: String,
}

fn ratio_of(summary: &RunSummary, split: &str) -> Option<f64> {
    Some(summary.rouge_l(When::After, split)? / summary.rouge_l(When::Before, split)?)
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

/// (method name, τ as written) of a table line.
type Key = (String, Option<String>);

/// The numbers of one table line: means over the seeds of the picked rate.
struct Line {
    lr: String,
    seeds: usize,
    forget: (Option<f64>, Option<f64>),
    retain: (Option<f64>, Option<f64>),
    utility: Option<f64>,
    forget_quality: Option<f64>,
    /// The leakage probe's mean worst-path forget ROUGE-L recall after the run.
    leakage: Option<f64>,
    /// The privacy audit after the run: privleak, Min-K %'s AUC, extraction strength.
    privleak: Option<f64>,
    min_k_auc: Option<f64>,
    extraction: Option<f64>,
    forget_sd: Option<f64>,
    retain_sd: Option<f64>,
}

fn mean(v: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = v.into_iter().flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Sample standard deviation (n − 1), absent for fewer than two values.
fn sample_sd(v: &[f64]) -> Option<f64> {
    (v.len() > 1).then(|| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    })
}

impl Line {
    /// The line of one (method, τ): `pick_lr` on the first seed's runs, then means over the
    /// picked rate's seeds. `None` when no rate has both scores.
    fn of(by_lr: &BTreeMap<String, Vec<&SweepRow>>, forget_target: f64) -> Option<Self> {
        let first_seed = by_lr.values().flatten().map(|r| r.seed).min();
        let firsts: Vec<&SweepRow> = by_lr
            .values()
            .flatten()
            .filter(|r| Some(r.seed) == first_seed)
            .copied()
            .collect();
        let lr = format!("{:e}", pick_lr(&firsts, forget_target)?);
        let runs = &by_lr[&lr];
        let get =
            |when: When, split: &str| mean(runs.iter().map(|r| r.summary.rouge_l(when, split)));
        let sd = |split: &str| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.summary.rouge_l(When::After, split))
                .collect();
            sample_sd(&v)
        };
        let after = |f: fn(&crate::eval::protocol::EvalReport) -> Option<f64>| {
            mean(runs.iter().map(|r| r.summary.after.as_ref().and_then(f)))
        };
        Some(Self {
            seeds: runs.len(),
            forget: (get(When::Before, "forget"), get(When::After, "forget")),
            retain: (get(When::Before, "retain"), get(When::After, "retain")),
            utility: after(|r| r.model_utility),
            forget_quality: after(|r| r.forget_quality),
            leakage: mean(runs.iter().map(|r| {
                let after = r.summary.after.as_ref()?;
                after.splits.get("forget")?.worst_path_rouge_l_recall
            })),
            privleak: after(|r| r.privacy.as_ref()?.privleak),
            min_k_auc: after(|r| r.privacy.as_ref()?.auc.get("mia_min_k").copied()),
            extraction: after(|r| r.privacy.as_ref()?.extraction_strength),
            forget_sd: sd("forget"),
            retain_sd: sd("retain"),
            lr,
        })
    }
}

fn ratio((before, after): (Option<f64>, Option<f64>)) -> Option<f64> {
    after.zip(before).map(|(a, b)| a / b)
}

fn fixed(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
}

/// privleak is a percentage: one decimal.
fn privleak(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
}

fn sci(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2e}")).unwrap_or_else(|| "–".into())
}

const CSV_HEADER: [&str; 18] = [
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
    "forget_worst_path_after",
    "privleak_after",
    "mia_min_k_auc_after",
    "extraction_strength_after",
    "forget_after_sd",
    "retain_after_sd",
];

const MARKDOWN_HEADER: &str = "| method | τ | lr | seeds | forget R-L before → after (×) | retain R-L before → after (×) | model utility after | forget quality after | forget R-L, worst decoding path | privleak after | Min-K % AUC after | extraction strength after |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";

fn csv_line(key: &Key, l: &Line) -> String {
    let tau = key.1.clone().unwrap_or_default();
    [
        key.0.clone(),
        tau,
        l.lr.clone(),
        l.seeds.to_string(),
        fixed(l.forget.0),
        fixed(l.forget.1),
        fixed(ratio(l.forget)),
        fixed(l.retain.0),
        fixed(l.retain.1),
        fixed(ratio(l.retain)),
        fixed(l.utility),
        sci(l.forget_quality),
        fixed(l.leakage),
        privleak(l.privleak),
        fixed(l.min_k_auc),
        fixed(l.extraction),
        fixed(l.forget_sd),
        fixed(l.retain_sd),
    ]
    .join(",")
        + "\n"
}

fn markdown_line(key: &Key, l: &Line) -> String {
    let pm = |v: Option<f64>| v.map(|v| format!(" ± {v:.3}")).unwrap_or_default();
    let method = Method::ALL
        .iter()
        .find(|m| m.name() == key.0)
        .map(|m| m.label())
        .unwrap_or(&key.0);
    let tau = key.1.clone().unwrap_or_else(|| "–".to_string());
    format!(
        "| {method} | {tau} | {} | {} | {} → {}{} (×{}) | {} → {}{} (×{}) | {} | {} | {} | {} | {} | {} |\n",
        l.lr,
        l.seeds,
        fixed(l.forget.0),
        fixed(l.forget.1),
        pm(l.forget_sd),
        fixed(ratio(l.forget)),
        fixed(l.retain.0),
        fixed(l.retain.1),
        pm(l.retain_sd),
        fixed(ratio(l.retain)),
        fixed(l.utility),
        sci(l.forget_quality),
        fixed(l.leakage),
        privleak(l.privleak),
        fixed(l.min_k_auc),
        fixed(l.extraction)
    )
}

/// One line per (method, τ): means over seeds at the learning rate `pick_lr` chooses from the
/// first seed's runs. After-values are means over seeds ± their standard deviation.
pub fn trade_off_table(rows: &[SweepRow], forget_target: f64) -> Table {
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
    let mut csv = CSV_HEADER.join(",") + "\n";
    let mut markdown = MARKDOWN_HEADER.to_string();
    for key in order {
        if let Some(line) = Line::of(&groups[&key], forget_target) {
            csv.push_str(&csv_line(&key, &line));
            markdown.push_str(&markdown_line(&key, &line));
        }
    }
    Table { csv, markdown }
}
