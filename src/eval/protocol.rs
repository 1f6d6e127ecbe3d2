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
//!
//! The report types (and what each label means) are plain data in `report.rs`, re-exported here.

use burn::tensor::backend::Backend;

use super::report::aggregate;
pub use super::report::{
    forget_quality, EvalReport, EvalSettings, EvalSplit, Generation, RougeL, SampleDetail,
    SplitRole, SplitScores,
};
use super::{rouge_l, stats};
use crate::data::QaItem;
use crate::diffusion::batch::SftExample;
use crate::diffusion::likelihood::{per_token_nll, Estimator};
use crate::diffusion::sampler::{generate_by_architecture, SamplerConfig, SamplerTokens};
use crate::model::MaskedDiffusionLm;
use crate::tokenizer::{TextTokenizer, TokenizerError};

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
    let encoded = EncodedChunk::new(tokenizer, chunk)?;
    let eq14 = per_token_nll(
        model,
        &encoded.mdu_pairs(chunk),
        Estimator::Eq14,
        settings.mc_samples,
        tokens,
        settings.batch_size,
        settings.seed ^ (base as u64) << 20,
        device,
    );
    let mut mc = Vec::new();
    if settings.tofu {
        mc = per_token_nll(
            model,
            &encoded.tofu_pairs(chunk),
            Estimator::LladaPerToken,
            settings.mc_samples,
            tokens,
            settings.batch_size,
            settings.seed ^ 0x70F0 ^ (base as u64) << 20,
            device,
        );
    }
    Ok(chunk_details(base, chunk, role, settings.tofu, &eq14, &mc))
}

/// A chunk's token ids: every item's prompt, and its answers each followed by the end of turn
/// (the answer, the perturbed answers, then the paraphrase if there is one).
struct EncodedChunk {
    prompts: Vec<Vec<u32>>,
    answers: Vec<Vec<Vec<u32>>>,
}

impl EncodedChunk {
    fn new(tokenizer: &TextTokenizer, chunk: &[QaItem]) -> Result<Self, TokenizerError> {
        let special = &tokenizer.special;
        let encode = |text: &str| -> Result<Vec<u32>, TokenizerError> {
            let mut ids = tokenizer.encode(text)?;
            ids.push(special.eot.unwrap_or(special.eos));
            Ok(ids)
        };
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
        Ok(Self { prompts, answers })
    }

    /// MDU protocol: answer and the first three perturbed answers, Eq. 14.
    fn mdu_pairs(&self, chunk: &[QaItem]) -> Vec<(&[u32], &[u32])> {
        let (prompts, answers) = (&self.prompts, &self.answers);
        let mut pairs: Vec<(&[u32], &[u32])> = Vec::new();
        for (k, it) in chunk.iter().enumerate() {
            let n_pert = it.perturbed_answer.len().min(3);
            for a in &answers[k][..1 + n_pert] {
                pairs.push((&prompts[k], a));
            }
        }
        pairs
    }

    /// TOFU protocol: the answer, all perturbed answers, then the paraphrase (the "correct" one
    /// on forget/retain; utility splits use the answer).
    fn tofu_pairs(&self, chunk: &[QaItem]) -> Vec<(&[u32], &[u32])> {
        let (prompts, answers) = (&self.prompts, &self.answers);
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
        pairs
    }
}

/// The details of the items of a chunk from their NLLs, laid out as
/// [`EncodedChunk::mdu_pairs`] (`eq14`) and [`EncodedChunk::tofu_pairs`] (`mc`, with `tofu`) list
/// them.
fn chunk_details(
    base: usize,
    chunk: &[QaItem],
    role: SplitRole,
    tofu: bool,
    eq14: &[f64],
    mc: &[f64],
) -> Vec<SampleDetail> {
    let mut out = Vec::with_capacity(chunk.len());
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
            worst_path: None,
            extraction_strength: None,
        };
        if tofu {
            let n_pert = it.perturbed_answer.len();
            let answer_nll = mc[m];
            let pert = &mc[m + 1..m + 1 + n_pert];
            let para = it.paraphrased_answer.as_ref().map(|_| mc[m + 1 + n_pert]);
            m += 1 + n_pert + usize::from(para.is_some());
            tofu_scores(&mut detail, role, answer_nll, pert, para);
        }
        out.push(detail);
    }
    out
}

/// TOFU probability and truth ratios of one item from the NLLs of its answer, perturbed answers
/// and paraphrase.
fn tofu_scores(
    detail: &mut SampleDetail,
    role: SplitRole,
    answer_nll: f64,
    pert: &[f64],
    para: Option<f64>,
) {
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
    generate_with(model, tokenizer, items, &sampler, batch_size, device, stop)
}

/// Generated answers with explicit sampler settings, `batch_size` prompts at a time.
pub fn generate_with<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    tokenizer: &TextTokenizer,
    items: &[QaItem],
    sampler: &SamplerConfig,
    batch_size: usize,
    device: &B::Device,
    stop: StopCheck,
) -> Result<Vec<String>, EvalError> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch_size.max(1)) {
        if stop() {
            return Err(EvalError::Stopped);
        }
        out.extend(generate_batch(model, tokenizer, chunk, sampler, device)?);
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
            remasking: Default::default(),
        },
    })
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
    let files = crate::checkpoint::ModelFiles::open(dir)?;
    let tokenizer = &files.tokenizer;
    let model = match files.load_until::<B>(device, budget, stop) {
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
