//! What an evaluation produces, in plain types: the splits and settings it runs on, per-item
//! details, per-split means and the cross-split TOFU numbers, with what each label means
//! ([`protocol_legend`]). No Burn here; `protocol.rs` computes these with the model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats;
use crate::data::QaItem;

/// What a split is for: TOFU treats forget, retain and the two utility splits differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SplitRole {
    Forget,
    Retain,
    RealPeople,
    WorldFacts,
    /// Any other file: scored, not part of utility.
    Other,
}

impl SplitRole {
    /// Utility splits use the answer (not its paraphrase) as "correct" and normalised probabilities.
    pub(super) fn is_utility_option_split(self) -> bool {
        matches!(self, SplitRole::RealPeople | SplitRole::WorldFacts)
    }

    /// The role a file name suggests (`forget10.json` → forget, `world_facts.jsonl` → world facts).
    pub fn guess(name: &str) -> Self {
        let n = name.to_ascii_lowercase();
        if n.contains("forget") {
            SplitRole::Forget
        } else if n.contains("retain") {
            SplitRole::Retain
        } else if n.contains("real") {
            SplitRole::RealPeople
        } else if n.contains("world") {
            SplitRole::WorldFacts
        } else {
            SplitRole::Other
        }
    }
}

#[derive(Clone, Debug)]
pub struct EvalSplit {
    pub name: String,
    pub role: SplitRole,
    pub items: Vec<QaItem>,
}

impl EvalSplit {
    /// A question–answer file as a split named by its file stem (its role guessed from the name:
    /// "real…" and "world…" are utility splits).
    pub fn from_file(file: &std::path::Path) -> Result<Self, crate::data::DataError> {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("eval")
            .to_string();
        Ok(Self {
            role: SplitRole::guess(&name),
            items: crate::data::read_qa_file(file)?,
            name,
        })
    }
}

/// How answers are generated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Generation {
    /// The demo setting: slot = longest gold answer (+ end of turn) + `margin`, one step per token.
    Demo { margin: usize },
    /// The MDU paper: 128 new tokens; LLaDA 256 steps in one block, Dream 128 steps.
    Paper,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    /// "live" (cheap, during training) or "full".
    pub label: String,
    pub generation: Generation,
    /// Monte-Carlo maskings per answer for every probability.
    pub mc_samples: usize,
    /// At most this many items per split (the first ones), `None` = all.
    pub max_items: Option<usize>,
    /// Also compute the TOFU-protocol numbers (probability, truth ratios, utility, forget quality).
    pub tofu: bool,
    pub batch_size: usize,
    pub seed: u64,
}

impl EvalSettings {
    pub fn live(mc_samples: usize, max_items: usize) -> Self {
        Self {
            label: "live".into(),
            generation: Generation::Demo { margin: 4 },
            mc_samples,
            max_items: Some(max_items),
            tofu: false,
            batch_size: 64,
            seed: 42,
        }
    }

    pub fn full(mc_samples: usize) -> Self {
        Self {
            label: "full".into(),
            generation: Generation::Demo { margin: 4 },
            mc_samples,
            max_items: None,
            tofu: true,
            batch_size: 64,
            seed: 42,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RougeL {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

/// One evaluated item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleDetail {
    pub index: usize,
    pub question: String,
    pub gold: String,
    pub generation: String,
    pub rouge_l: RougeL,
    /// MDU protocol: Eq. 14 per-token NLL of the gold answer and `exp(−nll)`.
    pub nll_eq14: f64,
    pub probability_eq14: f64,
    /// MDU protocol: `exp(nll(answer) − mean nll(perturbed[..3]))`; `None` without perturbed answers.
    pub truth_ratio_mdu: Option<f64>,
    /// TOFU protocol (LLaDA MC per token): `exp(−L_wrong) / (exp(−L_correct) + 1e-10)`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub truth_ratio_tofu: Option<f64>,
    /// TOFU protocol: `exp(−nll)` of the gold answer; on utility splits normalised over the options.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub probability_mc: Option<f64>,
    /// TOFU `prob_mean` term `p_c / (p_c + p_w + 1e-10)`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub truth_ratio_prob: Option<f64>,
    /// The leakage probe (`inside::leakage`, forget items after training): the decoding path
    /// with the highest ROUGE-L recall.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub worst_path: Option<WorstPath>,
    /// The privacy audit's extraction strength of this item (forget items, where audited).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extraction_strength: Option<f64>,
}

/// The decoding path that got the most of a forgotten answer back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstPath {
    pub path: String,
    #[serde(rename = "rougeL_recall")]
    pub rouge_l_recall: f64,
    pub generation: String,
}

/// Means over one split. Field names carry the protocol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitScores {
    pub role: Option<SplitRole>,
    pub items: usize,
    #[serde(rename = "rougeL_recall")]
    pub rouge_l_recall: f64,
    #[serde(rename = "rougeL_precision")]
    pub rouge_l_precision: f64,
    #[serde(rename = "rougeL_f1")]
    pub rouge_l_f1: f64,
    pub probability_eq14: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub truth_ratio_mdu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub probability_mc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub truth_ratio_closer_to_1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub truth_ratio_true_better: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub truth_ratio_prob_mean: Option<f64>,
    /// The leakage probe's mean per-item worst-case ROUGE-L recall (forget, after training).
    #[serde(
        rename = "worst_path_rougeL_recall",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub worst_path_rouge_l_recall: Option<f64>,
}

/// A whole evaluation: per split scores, and the cross-split TOFU numbers when computable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub label: String,
    #[serde(flatten)]
    pub splits: BTreeMap<String, SplitScores>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model_utility: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub forget_quality: Option<f64>,
    /// The privacy audit (forget vs holdout), where the run has a holdout split.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub privacy: Option<super::privacy::PrivacyReport>,
    /// Per split, per item.
    #[serde(skip)]
    pub samples: BTreeMap<String, Vec<SampleDetail>>,
}

impl EvalReport {
    /// Raw per-item TOFU truth ratios of the forget split (the sample forget quality compares).
    pub fn forget_truth_ratios(&self) -> Option<Vec<f64>> {
        let (name, _) = self
            .splits
            .iter()
            .find(|(_, s)| s.role == Some(SplitRole::Forget))?;
        self.samples[name]
            .iter()
            .map(|s| s.truth_ratio_tofu)
            .collect()
    }

    /// TOFU model utility: harmonic mean of {probability, ROUGE-L recall, truth ratio
    /// (`true_better`)} on retain, real people and world facts. `None` if a split is missing.
    pub fn compute_model_utility(&mut self) {
        let mut terms = Vec::new();
        for role in [
            SplitRole::Retain,
            SplitRole::RealPeople,
            SplitRole::WorldFacts,
        ] {
            let Some(s) = self.splits.values().find(|s| s.role == Some(role)) else {
                self.model_utility = None;
                return;
            };
            match (s.probability_mc, s.truth_ratio_true_better) {
                (Some(p), Some(tr)) => terms.extend([p, s.rouge_l_recall, tr]),
                _ => {
                    self.model_utility = None;
                    return;
                }
            }
        }
        self.model_utility = Some(stats::hmean(&terms));
    }

    /// The numbers open-unlearning also reports, under its metric names (its TOFU
    /// `*_SUMMARY.json` keys): `forget_Q_A_ROUGE` … by split role, `forget_Truth_Ratio`,
    /// `model_utility`, `forget_quality`, and the privacy audit's `mia_*`, `privleak`,
    /// `extraction_strength`, `exact_memorization`. Probabilities are our masked-diffusion
    /// estimates (`probability_mc`), not teacher-forced ones.
    pub fn open_unlearning_names(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for scores in self.splits.values() {
            let prefix = match scores.role {
                Some(SplitRole::Forget) => "forget",
                Some(SplitRole::Retain) => "retain",
                Some(SplitRole::RealPeople) => "ra",
                Some(SplitRole::WorldFacts) => "wf",
                _ => continue,
            };
            out.insert(format!("{prefix}_Q_A_ROUGE"), scores.rouge_l_recall);
            if let Some(p) = scores.probability_mc {
                // Utility splits' probabilities are normalised over the options, as TOFU's are.
                let name = match scores.role {
                    Some(SplitRole::RealPeople | SplitRole::WorldFacts) => "Q_A_Prob_normalised",
                    _ => "Q_A_Prob",
                };
                out.insert(format!("{prefix}_{name}"), p);
            }
            let truth_ratio = match scores.role {
                Some(SplitRole::Forget) => scores.truth_ratio_closer_to_1,
                _ => scores.truth_ratio_true_better,
            };
            if let Some(t) = truth_ratio {
                out.insert(format!("{prefix}_Truth_Ratio"), t);
            }
        }
        out.extend(self.model_utility.map(|v| ("model_utility".to_string(), v)));
        out.extend(
            self.forget_quality
                .map(|v| ("forget_quality".to_string(), v)),
        );
        if let Some(p) = &self.privacy {
            out.extend(p.open_unlearning_names());
        }
        out
    }

    /// Per-item details as JSON lines, each with its split's name.
    pub fn details_jsonl(&self) -> String {
        let mut lines = String::new();
        for (split, samples) in &self.samples {
            for s in samples {
                let mut v = serde_json::to_value(s).expect("sample details serialise");
                v.as_object_mut()
                    .expect("object")
                    .insert("split".into(), split.clone().into());
                lines.push_str(&(v.to_string() + "\n"));
            }
        }
        lines
    }
}

/// The means over one split of its per-item details.
pub(super) fn aggregate(role: SplitRole, samples: &[SampleDetail]) -> SplitScores {
    let mean = |f: &dyn Fn(&SampleDetail) -> f64| {
        stats::np_mean(&samples.iter().map(f).collect::<Vec<_>>())
    };
    let mean_opt = |f: &dyn Fn(&SampleDetail) -> Option<f64>| -> Option<f64> {
        let v: Option<Vec<f64>> = samples.iter().map(f).collect();
        v.filter(|v| !v.is_empty()).map(|v| stats::np_mean(&v))
    };
    let trs: Option<Vec<f64>> = samples.iter().map(|s| s.truth_ratio_tofu).collect();
    let trs = trs.filter(|v| !v.is_empty());
    SplitScores {
        role: Some(role),
        items: samples.len(),
        rouge_l_recall: mean(&|s| s.rouge_l.recall),
        rouge_l_precision: mean(&|s| s.rouge_l.precision),
        rouge_l_f1: mean(&|s| s.rouge_l.fmeasure),
        probability_eq14: mean(&|s| s.probability_eq14),
        truth_ratio_mdu: mean_opt(&|s| s.truth_ratio_mdu),
        probability_mc: mean_opt(&|s| s.probability_mc),
        truth_ratio_closer_to_1: trs.as_ref().map(|v| stats::closer_to_1_better(v)),
        truth_ratio_true_better: trs.as_ref().map(|v| stats::true_better(v)),
        truth_ratio_prob_mean: mean_opt(&|s| s.truth_ratio_prob),
        worst_path_rouge_l_recall: mean_opt(&|s| s.worst_path.as_ref().map(|w| w.rouge_l_recall)),
    }
}

/// TOFU forget quality: the exact two-sample KS p-value between the forget truth ratios of the
/// evaluated model and of the retain-only model.
pub fn forget_quality(model_tr: &[f64], retain_model_tr: &[f64]) -> Option<f64> {
    stats::ks_2samp_pvalue(model_tr, retain_model_tr)
}

/// What each label of a report (and of an unlearning run's summary) means.
pub fn protocol_legend() -> serde_json::Value {
    serde_json::json!({
        "rougeL_recall": "ROUGE-L recall of generations (rouge-score 0.1.2, use_stemmer=True), both protocols",
        "probability_eq14": "MDU-paper protocol: exp(-NLL) with NLL from the Eq. 14 estimator (per-token, Monte-Carlo)",
        "truth_ratio_mdu": "MDU-paper protocol: raw mean of exp(NLL(answer) - mean NLL(perturbed[:3])), Eq. 14",
        "probability_mc": "TOFU protocol adapted: LLaDA Monte-Carlo likelihood normalised per token (TOFU's teacher-forced probability does not exist for masked diffusion); normalised over the options on real-people and world-facts splits",
        "truth_ratio_closer_to_1": "TOFU: mean(min(tr, 1/tr)), tr = P(perturbed)/P(paraphrased)",
        "truth_ratio_true_better": "TOFU: mean(max(0, 1 - tr))",
        "truth_ratio_prob_mean": "TOFU (open-unlearning prob_mean): mean(p_c / (p_c + p_w))",
        "model_utility": "TOFU: harmonic mean of probability, ROUGE-L recall and truth ratio (true_better) on retain, real people and world facts",
        "forget_quality": "TOFU: exact two-sample KS p-value of forget truth ratios against the retain-only model",
    })
}
