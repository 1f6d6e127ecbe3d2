//! Split evaluation shared by `mdu eval`, `mdu unlearn` and the GUI. Every number is labelled
//! with its protocol (mdu.md §6):
//!
//! - **MDU-paper protocol**: ROUGE-L recall of sampler generations; probability `exp(−nll)` from
//!   the Eq. 14 estimator; truth ratio `exp(nll(answer) − mean nll(perturbed[..3]))`, raw mean.
//! - **TOFU protocol, adapted**: TOFU's probability is teacher-forced and autoregressive, which a
//!   masked-diffusion LM has not; we substitute LLaDA's Monte-Carlo likelihood normalised per
//!   token (`_mc` in the names). Truth ratio with the paraphrased answer as "correct" (forget and
//!   retain; the answer on utility splits) and all perturbed answers, with TOFU's aggregators;
//!   forget quality (KS p-value against the retain-only model) and model utility (harmonic mean).

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::{rouge_l, stats};
use crate::data::QaItem;
use crate::diffusion::batch::SftExample;
use crate::diffusion::likelihood::{per_token_nll, Estimator};
use crate::diffusion::sampler::{generate_by_architecture, SamplerConfig, SamplerTokens};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::{TextTokenizer, TokenizerError};

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
    fn is_utility_option_split(self) -> bool {
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
}

/// Stops an evaluation between batches.
pub type StopCheck<'a> = &'a (dyn Fn() -> bool + Sync);

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("stopped")]
    Stopped,
}

/// Evaluates every split; `on_progress(done, total)` counts items.
pub fn evaluate<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    splits: &[EvalSplit],
    settings: &EvalSettings,
    device: &B::Device,
    stop: StopCheck,
) -> Result<EvalReport, EvalError> {
    let mut report = EvalReport {
        label: settings.label.clone(),
        ..Default::default()
    };
    for split in splits {
        let items = match settings.max_items {
            Some(n) => &split.items[..n.min(split.items.len())],
            None => &split.items[..],
        };
        let samples = evaluate_items(model, tokenizer, items, split.role, settings, device, stop)?;
        report
            .splits
            .insert(split.name.clone(), aggregate(split.role, &samples));
        report.samples.insert(split.name.clone(), samples);
    }
    if settings.tofu {
        report.compute_model_utility();
    }
    Ok(report)
}

/// Items per unit of evaluation work (a generation batch or a likelihood chunk). The likelihood
/// seeds depend on the chunk, not on which thread runs it, so results do not depend on scheduling.
const CHUNK: usize = 16;

/// Answers, ROUGE-L and probabilities for `items`. Generation batches and likelihood chunks are
/// independent units of work, pulled from one queue by as many threads as the compute pool has
/// (all cores for the CLI, cores − 1 in the window): on the CPU backend most element-wise work
/// is single-threaded, so this is what keeps every core busy.
pub fn evaluate_items<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    role: SplitRole,
    settings: &EvalSettings,
    device: &B::Device,
    stop: StopCheck,
) -> Result<Vec<SampleDetail>, EvalError> {
    let sampler = sampler_config(model, tokenizer, items, &settings.generation)?;
    let (generations, mut samples) = run_units(
        model,
        tokenizer,
        items,
        role,
        settings,
        Some(&sampler),
        device,
        stop,
    )?;
    for ((detail, generation), item) in samples.iter_mut().zip(generations).zip(items) {
        let score = rouge_l(&item.answer, &generation);
        detail.rouge_l = RougeL {
            precision: score.precision,
            recall: score.recall,
            fmeasure: score.fmeasure,
        };
        detail.generation = generation;
    }
    Ok(samples)
}

/// Probabilities and truth ratios only (no generation; ROUGE fields are zero).
pub fn likelihood_only<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    role: SplitRole,
    settings: &EvalSettings,
    device: &B::Device,
    stop: StopCheck,
) -> Result<Vec<SampleDetail>, EvalError> {
    Ok(run_units(model, tokenizer, items, role, settings, None, device, stop)?.1)
}

enum UnitResult {
    Generated(usize, Vec<String>),
    Scored(usize, Vec<SampleDetail>),
}

/// Runs the generation batches (when `sampler` is given) and the likelihood chunks of `items` on
/// the compute pool's threads; returns the generations and the scored details in item order.
#[allow(clippy::too_many_arguments)]
fn run_units<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    role: SplitRole,
    settings: &EvalSettings,
    sampler: Option<&SamplerConfig>,
    device: &B::Device,
    stop: StopCheck,
) -> Result<(Vec<String>, Vec<SampleDetail>), EvalError> {
    let chunks: Vec<&[QaItem]> = items.chunks(CHUNK).collect();
    let n_gen = if sampler.is_some() { chunks.len() } else { 0 };
    let units = n_gen + chunks.len();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || -> Result<Vec<UnitResult>, EvalError> {
        let mut done = Vec::new();
        loop {
            let unit = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if unit >= units {
                return Ok(done);
            }
            if stop() {
                return Err(EvalError::Stopped);
            }
            done.push(match sampler {
                Some(sampler) if unit < n_gen => UnitResult::Generated(
                    unit,
                    generate_batch(model, tokenizer, chunks[unit], sampler, device)?,
                ),
                _ => {
                    let c = unit - n_gen;
                    UnitResult::Scored(
                        c,
                        score_chunk(
                            model,
                            tokenizer,
                            c * CHUNK,
                            chunks[c],
                            role,
                            settings,
                            device,
                        )?,
                    )
                }
            });
        }
    };
    let workers = rayon::current_num_threads().clamp(1, units.max(1));
    let results: Vec<Result<Vec<UnitResult>, EvalError>> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(&work)).collect();
        let mut results = vec![work()];
        for h in helpers {
            results.push(
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        results
    });
    let mut generated: Vec<Option<Vec<String>>> = vec![None; n_gen];
    let mut scored: Vec<Option<Vec<SampleDetail>>> = vec![None; chunks.len()];
    for r in results {
        for unit in r? {
            match unit {
                UnitResult::Generated(i, g) => generated[i] = Some(g),
                UnitResult::Scored(i, s) => scored[i] = Some(s),
            }
        }
    }
    Ok((
        generated.into_iter().flatten().flatten().collect(),
        scored.into_iter().flatten().flatten().collect(),
    ))
}

/// Probabilities and truth ratios of one chunk of items starting at item `base`.
fn score_chunk<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    base: usize,
    chunk: &[QaItem],
    role: SplitRole,
    settings: &EvalSettings,
    device: &B::Device,
) -> Result<Vec<SampleDetail>, EvalError> {
    let special = &tokenizer.special;
    let tokens = (special.mask, special.eos);
    let encode = |text: &str| -> Result<Vec<u32>, TokenizerError> {
        let mut ids = tokenizer.encode(text)?;
        ids.push(special.eot.unwrap_or(special.eos));
        Ok(ids)
    };
    let mut out = Vec::with_capacity(chunk.len());
    let mut prompts = Vec::new();
    let mut answers: Vec<Vec<Vec<u32>>> = Vec::new();
    for it in chunk {
        prompts.push(SftExample::encode_pair(tokenizer, &it.question, "")?.prompt);
        let mut a = vec![encode(&it.answer)?];
        for p in it.perturbed_answer.iter() {
            a.push(encode(p)?);
        }
        if let Some(p) = &it.paraphrased_answer {
            a.push(encode(p)?);
        }
        answers.push(a);
    }
    // MDU protocol: answer and the first three perturbed answers, Eq. 14.
    let mut pairs: Vec<(&[u32], &[u32])> = Vec::new();
    let mut owners = Vec::new();
    for (k, it) in chunk.iter().enumerate() {
        let n_pert = it.perturbed_answer.len().min(3);
        for a in &answers[k][..1 + n_pert] {
            pairs.push((&prompts[k], a));
            owners.push(k);
        }
    }
    let eq14 = per_token_nll(
        model,
        &pairs,
        Estimator::Eq14,
        settings.mc_samples,
        tokens,
        settings.batch_size,
        settings.seed ^ (base as u64) << 20,
        device,
    );
    // TOFU protocol: correct (paraphrase on forget/retain, answer on utility splits), all perturbed.
    let mut mc = Vec::new();
    if settings.tofu {
        let mut pairs: Vec<(&[u32], &[u32])> = Vec::new();
        for (k, it) in chunk.iter().enumerate() {
            pairs.push((&prompts[k], &answers[k][0]));
            let n_pert = it.perturbed_answer.len();
            for a in &answers[k][1..1 + n_pert] {
                pairs.push((&prompts[k], a));
            }
            if let Some(para) = answers[k].get(1 + n_pert) {
                pairs.push((&prompts[k], para));
            }
        }
        mc = per_token_nll(
            model,
            &pairs,
            Estimator::LladaPerToken,
            settings.mc_samples,
            tokens,
            settings.batch_size,
            settings.seed ^ 0x70F0 ^ (base as u64) << 20,
            device,
        );
    }
    let (mut e, mut m) = (0, 0);
    for (k, it) in chunk.iter().enumerate() {
        let n_pert_mdu = it.perturbed_answer.len().min(3);
        let gt = eq14[e];
        let pert = &eq14[e + 1..e + 1 + n_pert_mdu];
        e += 1 + n_pert_mdu;
        let truth_ratio_mdu = (!pert.is_empty()).then(|| stats::mdu_truth_ratio(gt, pert));
        let mut detail = SampleDetail {
            index: base + k,
            question: it.question.clone(),
            gold: it.answer.clone(),
            generation: String::new(),
            rouge_l: RougeL::default(),
            nll_eq14: gt,
            probability_eq14: (-gt).exp(),
            truth_ratio_mdu,
            truth_ratio_tofu: None,
            probability_mc: None,
            truth_ratio_prob: None,
        };
        if settings.tofu {
            let n_pert = it.perturbed_answer.len();
            let answer_nll = mc[m];
            let pert = &mc[m + 1..m + 1 + n_pert];
            let para = it.paraphrased_answer.as_ref().map(|_| mc[m + 1 + n_pert]);
            m += 1 + n_pert + usize::from(para.is_some());
            let correct = if role.is_utility_option_split() {
                answer_nll
            } else {
                para.unwrap_or(answer_nll)
            };
            let p_answer = (-answer_nll).exp();
            detail.probability_mc = Some(if role.is_utility_option_split() {
                let others: f64 = pert.iter().map(|l| (-l).exp()).sum();
                p_answer / (p_answer + others + 1e-10)
            } else {
                p_answer
            });
            if !pert.is_empty() {
                detail.truth_ratio_tofu = Some(stats::truth_ratio(correct, pert));
                let wrong = pert.iter().sum::<f64>() / pert.len() as f64;
                let (pc, pw) = ((-correct).exp(), (-wrong).exp());
                detail.truth_ratio_prob = Some(pc / (pc + pw + 1e-10));
            }
        }
        out.push(detail);
    }
    Ok(out)
}

fn aggregate(role: SplitRole, samples: &[SampleDetail]) -> SplitScores {
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
    }
}

/// Generated answers (decoded, special tokens dropped, stripped), `batch_size` prompts at a time.
pub fn generate_answers<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    generation: &Generation,
    batch_size: usize,
    device: &B::Device,
    stop: StopCheck,
) -> Result<Vec<String>, EvalError> {
    let sampler = sampler_config(model, tokenizer, items, generation)?;
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch_size.max(1)) {
        if stop() {
            return Err(EvalError::Stopped);
        }
        out.extend(generate_batch(model, tokenizer, chunk, &sampler, device)?);
    }
    Ok(out)
}

/// One batch of generated answers (decoded, special tokens dropped, stripped).
fn generate_batch<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    sampler: &SamplerConfig,
    device: &B::Device,
) -> Result<Vec<String>, EvalError> {
    let tokens = SamplerTokens::from(&tokenizer.special);
    let prompts = items
        .iter()
        .map(|it| SftExample::encode_pair(tokenizer, &it.question, "").map(|e| e.prompt))
        .collect::<Result<Vec<_>, _>>()?;
    let answers = generate_by_architecture(model, &prompts, &tokens, sampler, device, |_| {});
    answers
        .iter()
        .map(|ids| Ok(tokenizer.decode(ids, true)?.trim().to_string()))
        .collect()
}

/// The sampler settings of a generation protocol for these items.
pub fn sampler_config<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    generation: &Generation,
) -> Result<SamplerConfig, TokenizerError> {
    Ok(match generation {
        Generation::Demo { margin } => super::demo_sampler_config(tokenizer, items, *margin)?,
        Generation::Paper => SamplerConfig {
            max_new_tokens: 128,
            block_size: 128,
            steps: if model.config.architecture.shifts_logits() {
                128
            } else {
                256
            },
            temperature: 0.0,
            suppress_tokens: vec![],
            seed: 0,
        },
    })
}

/// TOFU forget quality: the exact two-sample KS p-value between the forget truth ratios of the
/// evaluated model and of the retain-only model.
pub fn forget_quality(model_tr: &[f64], retain_model_tr: &[f64]) -> Option<f64> {
    stats::ks_2samp_pvalue(model_tr, retain_model_tr)
}

impl EvalReport {
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

/// The retain-only model in `dir`: its raw TOFU truth ratios on the forget items (the first
/// `settings.max_items`), the sample forget quality compares against. `None` when an item has
/// no perturbed answers.
pub fn retain_model_truth_ratios<B: Backend>(
    dir: &std::path::Path,
    forget: &[QaItem],
    settings: &EvalSettings,
    budget: &crate::checkpoint::MemoryBudget,
    device: &B::Device,
    stop: StopCheck,
) -> anyhow::Result<Option<Vec<f64>>> {
    let crate::checkpoint::ModelFiles {
        checkpoint: ckpt,
        tokenizer,
        ..
    } = crate::checkpoint::ModelFiles::open(dir)?;
    let model = match ckpt.load_until::<B>(device, budget, stop) {
        Err(crate::checkpoint::CheckpointError::Stopped) => return Err(EvalError::Stopped.into()),
        loaded => loaded?,
    };
    let items = &forget[..settings.max_items.unwrap_or(usize::MAX).min(forget.len())];
    let samples = likelihood_only(
        &model,
        &tokenizer,
        items,
        SplitRole::Forget,
        settings,
        device,
        stop,
    )?;
    Ok(samples.iter().map(|s| s.truth_ratio_tofu).collect())
}
