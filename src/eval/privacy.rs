//! Privacy audits of a masked-diffusion LM: open-unlearning's membership-inference attacks
//! (`mia.rs` holds their formulas), privleak, extraction strength and exact memorisation, on
//! statistics taken the masked-diffusion way. There is no teacher-forced, left-to-right likelihood
//! to read per-token scores from, and shifting the logits as an autoregressive model would is wrong
//! for LLaDA; instead (`docs/privacy.md` has the definitions):
//!
//! - **Antithetic masks.** Each answer is scored under `mask_pairs` pairs of maskings: a random
//!   mask of `n ~ U{1..L}` answer tokens, and its complement (the full mask when `n = L`). Every
//!   answer token is masked at least once in every pair, so every token gets a score, and each
//!   mask is one sample of MDU's Eq. 14 estimator.
//! - **LOSS**: the Eq. 14 per-token NLL, `Σ_masks (Σ_{i∈mask} −log p(x_i)) / |mask|`, averaged
//!   over the masks (an upper bound on the per-token NLL in expectation).
//! - **Per-token scores** (Min-K %, Min-K %++): token `i`'s `log p(x_i)`, and the mean and
//!   variance of `log p` over the vocabulary at `i`, each averaged over the masks that hide it.
//! - **GradNorm**: the mean over parameter tensors of the L2 norm of LOSS's gradient (one item at
//!   a time, open-unlearning's `p = 2`).
//! - **Reference**: LOSS minus the retain-only model's LOSS on the same masks.
//! - **Extraction strength** (ES) and **exact memorisation** (EM), with the sampler in place of
//!   teacher forcing: ES = 1 − k/L for the smallest answer prefix of k tokens after which the
//!   greedy sampler writes the rest of the answer exactly (0 when none does; prefixes are tried in
//!   tenths of the answer, [`PREFIX_STEPS`]); EM is the share of answer tokens the sampler writes
//!   in their place from the question alone. The answer's end-of-turn token is not counted: the
//!   sampler stops before it.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::mia;
use crate::diffusion::batch::SftExample;
use crate::diffusion::likelihood::{
    batched_token_stats, masked_log_probs, random_subset, MaskedQuery,
};
use crate::diffusion::sampler::{generate_by_architecture, SamplerConfig, SamplerTokens};
use crate::model::MaskedDiffusionLm;
use crate::rng::SplitMix64;

/// How the statistics are estimated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MiaSettings {
    /// Pairs of complementary maskings per answer (2 forwards each).
    pub mask_pairs: usize,
    /// The share of lowest-scoring tokens Min-K % and Min-K %++ average (open-unlearning's 0.4).
    pub k: f64,
    /// Item `i` draws its masks from `SplitMix64(seed + i)`: the same masks for every model.
    pub seed: u64,
    /// Rows per forward.
    pub batch_size: usize,
}

impl Default for MiaSettings {
    fn default() -> Self {
        Self {
            mask_pairs: 4,
            k: 0.4,
            seed: 0,
            batch_size: 32,
        }
    }
}

impl MiaSettings {
    /// What the report says about its estimator.
    pub fn describe(&self) -> String {
        format!(
            "antithetic masked likelihood: {} pairs of complementary random masks per answer \
             ({} forwards), Min-K k = {}",
            self.mask_pairs,
            2 * self.mask_pairs,
            self.k
        )
    }
}

/// An answer's maskings: `pairs` pairs of a random mask of `n ~ U{1..len}` positions and its
/// complement (or the full mask when `n = len`), each ascending.
pub fn antithetic_masks(len: usize, pairs: usize, rng: &mut SplitMix64) -> Vec<Vec<usize>> {
    if len == 0 {
        return Vec::new();
    }
    let mut masks = Vec::with_capacity(2 * pairs);
    for _ in 0..pairs.max(1) {
        let n = rng.range(1, len + 1);
        let mask = random_subset(rng, len, n);
        let complement: Vec<usize> = if n == len {
            (0..len).collect()
        } else {
            (0..len)
                .filter(|i| mask.binary_search(i).is_err())
                .collect()
        };
        masks.push(mask);
        masks.push(complement);
    }
    masks
}

/// One item's statistics under a model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemStats {
    /// LOSS: the Eq. 14 per-token NLL averaged over the masks.
    pub avg_loss: f64,
    /// Per answer token: `log p`, and the vocabulary's mean and variance of `log p`, each averaged
    /// over the masks that hide the token.
    pub logp: Vec<f64>,
    pub mu: Vec<f64>,
    pub sigma2: Vec<f64>,
}

/// Every item's masks, as likelihood queries (item `i`'s from `SplitMix64(seed + i)`).
fn queries<'a>(examples: &'a [SftExample], settings: &MiaSettings) -> Vec<Vec<MaskedQuery<'a>>> {
    examples
        .iter()
        .enumerate()
        .map(|(i, ex)| {
            let mut rng = SplitMix64(settings.seed.wrapping_add(i as u64));
            antithetic_masks(ex.answer.len(), settings.mask_pairs, &mut rng)
                .into_iter()
                .map(|mask| MaskedQuery {
                    prompt: &ex.prompt,
                    answer: &ex.answer,
                    mask,
                })
                .collect()
        })
        .collect()
}

/// [`ItemStats`] of every example; `tokens` is `(mask id, padding id)`.
pub fn item_stats<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    examples: &[SftExample],
    tokens: (u32, u32),
    settings: &MiaSettings,
    device: &B::Device,
) -> Vec<ItemStats> {
    let per_item = queries(examples, settings);
    let flat: Vec<MaskedQuery> = per_item.into_iter().flatten().collect();
    let stats = batched_token_stats(model, &flat, tokens, true, settings.batch_size, device);
    let mut rows = flat.iter().zip(stats);
    examples
        .iter()
        .map(|ex| {
            let l = ex.answer.len();
            let masks = if l == 0 {
                0
            } else {
                2 * settings.mask_pairs.max(1)
            };
            let (mut logp, mut mu, mut sigma2, mut hits) =
                (vec![0.0; l], vec![0.0; l], vec![0.0; l], vec![0usize; l]);
            let mut loss = 0.0;
            for (query, row) in rows.by_ref().take(masks) {
                let mut sum = 0.0;
                for (&i, t) in query.mask.iter().zip(&row) {
                    logp[i] += t.logp as f64;
                    mu[i] += t.mu as f64;
                    sigma2[i] += t.sigma2 as f64;
                    hits[i] += 1;
                    sum -= t.logp as f64;
                }
                loss += sum / query.mask.len() as f64;
            }
            for i in 0..l {
                let h = hits[i].max(1) as f64;
                logp[i] /= h;
                mu[i] /= h;
                sigma2[i] /= h;
            }
            ItemStats {
                avg_loss: if masks == 0 { 0.0 } else { loss / masks as f64 },
                logp,
                mu,
                sigma2,
            }
        })
        .collect()
}

/// GradNorm's statistic for every example: LOSS on the same masks as [`item_stats`], backward,
/// then the mean over parameter tensors of their gradient's L2 norm (open-unlearning's `p = 2`).
/// With LoRA only the adapters train, so only they have gradients, as with a PEFT model.
pub fn grad_norms<B: AutodiffBackend>(
    model: &MaskedDiffusionLm<B>,
    examples: &[SftExample],
    tokens: (u32, u32),
    settings: &MiaSettings,
    device: &B::Device,
) -> Vec<f64> {
    queries(examples, settings)
        .iter()
        .map(|item| {
            let chunk: Vec<&MaskedQuery> = item.iter().collect();
            let Some(rows) = masked_log_probs(model, &chunk, tokens, device) else {
                return 0.0;
            };
            // LOSS = mean over masks of Σ −log p / |mask|: each row weighs 1 / (|mask|·masks).
            let weights: Vec<f32> = rows
                .owner
                .iter()
                .map(|&b| 1.0 / (item[b].mask.len() * item.len()) as f32)
                .collect();
            let n = weights.len();
            let weights = Tensor::<B, 2>::from_data(TensorData::new(weights, [n, 1]), device);
            let loss = (rows.log_probs.gather(1, rows.targets) * weights)
                .sum()
                .neg();
            let grads = GradientsParams::from_grads(loss.backward(), model);
            let mut visitor = MeanNorm::<B> {
                grads: &grads,
                total: None,
                count: 0,
            };
            model.visit(&mut visitor);
            match visitor.total {
                Some(t) => t.into_scalar().elem::<f64>() / visitor.count as f64,
                None => 0.0,
            }
        })
        .collect()
}

/// Sums the L2 norms of the parameters' gradients and counts them.
struct MeanNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
    count: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for MeanNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let norm = crate::model::precision::at_least_f32(g)
                .powi_scalar(2)
                .sum()
                .sqrt();
            self.total = Some(match self.total.take() {
                Some(t) => t + norm,
                None => norm,
            });
            self.count += 1;
        }
    }
}

/// One attack's per-item scores under open-unlearning's name for it.
pub type AttackScores = BTreeMap<String, Vec<f64>>;

/// Each attack's score per item (higher looks less like training data): LOSS, ZLib over the
/// answer text, Min-K %, Min-K %++, GradNorm when given, Reference when the retain-only model's
/// statistics on the same items are given.
pub fn attack_scores(
    stats: &[ItemStats],
    answers: &[&str],
    grad_norms: Option<&[f64]>,
    reference: Option<&[ItemStats]>,
    k: f64,
) -> AttackScores {
    let mut out = AttackScores::new();
    let mut put = |name: &str, v: Vec<f64>| {
        out.insert(name.to_string(), v);
    };
    put("mia_loss", stats.iter().map(|s| s.avg_loss).collect());
    put(
        "mia_zlib",
        stats
            .iter()
            .zip(answers)
            .map(|(s, a)| mia::zlib_score(s.avg_loss, a))
            .collect(),
    );
    put(
        "mia_min_k",
        stats.iter().map(|s| mia::min_k(&s.logp, k)).collect(),
    );
    put(
        "mia_min_k_plus_plus",
        stats
            .iter()
            .map(|s| mia::min_k_plus_plus(&s.logp, &s.mu, &s.sigma2, k))
            .collect(),
    );
    if let Some(g) = grad_norms {
        put("mia_gradnorm", g.to_vec());
    }
    if let Some(r) = reference {
        put(
            "mia_reference",
            stats
                .iter()
                .zip(r)
                .map(|(s, r)| s.avg_loss - r.avg_loss)
                .collect(),
        );
    }
    out
}

/// Each attack's AUC, forget (label 0) against holdout (label 1); attacks missing on either side
/// are left out.
pub fn attack_aucs(forget: &AttackScores, holdout: &AttackScores) -> BTreeMap<String, f64> {
    forget
        .iter()
        .filter_map(|(name, f)| {
            let h = holdout.get(name)?;
            Some((name.clone(), mia::auc(f, h)?))
        })
        .collect()
}

/// Extraction strength and exact memorisation of each example (module docs), with the greedy
/// sampler settings `sampler` (its answer slot shrinks by the prefix given). Examples are run
/// `batch_size` at a time; `stop` is asked between batches.
pub fn memorisation<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    examples: &[SftExample],
    tokens: &SamplerTokens,
    sampler: &SamplerConfig,
    batch_size: usize,
    device: &B::Device,
    stop: &dyn Fn() -> bool,
) -> Option<Vec<(f64, f64)>> {
    // The sampler's answers end before their stop token: so do the targets.
    let targets: Vec<&[u32]> = examples
        .iter()
        .map(|ex| {
            let mut a = &ex.answer[..];
            while let Some((last, rest)) = a.split_last() {
                if !tokens.stops.contains(last) {
                    break;
                }
                a = rest;
            }
            a
        })
        .collect();
    let longest = targets.iter().map(|t| t.len()).max().unwrap_or(0);
    // Room the sampler's slot leaves after the longest answer (the demo protocol's margin).
    let margin = sampler.max_new_tokens.saturating_sub(longest);
    // (ES, EM); ES stays 0 until a prefix lets the sampler finish the answer.
    let mut out = vec![(0.0, 0.0); examples.len()];
    let mut open: Vec<usize> = (0..examples.len())
        .filter(|&i| !targets[i].is_empty())
        .collect();
    // Prefix j of an answer of l tokens is its first ⌊j·l/10⌋ tokens (all of them for l ≤ 10).
    let prefix = |j: usize, l: usize| {
        if l <= PREFIX_STEPS {
            j
        } else {
            j * l / PREFIX_STEPS
        }
    };
    for j in 0..PREFIX_STEPS.min(longest) {
        open.retain(|&i| prefix(j, targets[i].len()) < targets[i].len());
        if open.is_empty() {
            break;
        }
        let rest = open
            .iter()
            .map(|&i| targets[i].len() - prefix(j, targets[i].len()))
            .max()
            .unwrap_or(1);
        let slot = rest + margin;
        let steps = (sampler.steps * slot).div_ceil(sampler.max_new_tokens.max(1));
        let cfg = SamplerConfig {
            max_new_tokens: slot,
            block_size: slot,
            steps: steps.clamp(1, slot),
            ..sampler.clone()
        };
        let mut done = Vec::new();
        for batch in open.chunks(batch_size.max(1)) {
            if stop() {
                return None;
            }
            let prompts: Vec<Vec<u32>> = batch
                .iter()
                .map(|&i| {
                    let k = prefix(j, targets[i].len());
                    examples[i]
                        .prompt
                        .iter()
                        .chain(&targets[i][..k])
                        .copied()
                        .collect()
                })
                .collect();
            let written = generate_by_architecture(model, &prompts, tokens, &cfg, device, |_| {});
            for (&i, ids) in batch.iter().zip(written) {
                let target = targets[i];
                let (l, k) = (target.len(), prefix(j, target.len()));
                if j == 0 {
                    let same = (0..l).filter(|&p| ids.get(p) == Some(&target[p])).count();
                    out[i].1 = same as f64 / l as f64;
                }
                if ids.starts_with(&target[k..]) {
                    out[i].0 = 1.0 - k as f64 / l as f64;
                    done.push(i);
                }
            }
        }
        open.retain(|i| !done.contains(i));
    }
    Some(out)
}

/// How many answer prefixes extraction strength tries: lengths 0, ⌊l/10⌋, ⌊2l/10⌋, … (every
/// length for answers of at most 10 tokens), so its resolution is a tenth of the answer.
pub const PREFIX_STEPS: usize = 10;

/// A privacy audit's numbers for one model (names as open-unlearning's metrics).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrivacyReport {
    /// How the statistics were estimated.
    pub estimator: String,
    pub forget_items: usize,
    pub holdout_items: usize,
    /// Each attack's AUC on forget vs holdout: 0.5 cannot tell them apart; towards 1 the forget
    /// set still looks like training data.
    pub auc: BTreeMap<String, f64>,
    /// The same attacks on the retain-only model, when one is given (near 0.5 when the holdout is
    /// a fair one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retain_only_auc: BTreeMap<String, f64>,
    /// open-unlearning's privleak from Min-K %'s AUCs (`mia::privleak`); needs the retain-only
    /// model. Near 0 is best; negative means still told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privleak: Option<f64>,
    /// Means over the forget items (higher: more is still extractable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction_strength: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_memorization: Option<f64>,
    /// Each forget item's extraction strength, in item order (the samples table shows them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forget_extraction: Vec<f64>,
}

impl PrivacyReport {
    /// The flat export under open-unlearning's metric names (`mia_min_k`, `privleak`,
    /// `extraction_strength`, `exact_memorization`, …).
    pub fn open_unlearning_names(&self) -> BTreeMap<String, f64> {
        let mut out = self.auc.clone();
        out.extend(self.privleak.map(|v| ("privleak".to_string(), v)));
        out.extend(
            self.extraction_strength
                .map(|v| ("extraction_strength".to_string(), v)),
        );
        out.extend(
            self.exact_memorization
                .map(|v| ("exact_memorization".to_string(), v)),
        );
        out
    }
}

/// Which way each number is better, for reports.
pub fn better(metric: &str) -> &'static str {
    match metric {
        "privleak" => "closer to 0",
        "extraction_strength" | "exact_memorization" => "lower",
        _ => "closer to the retain-only model (0.5 = not told apart)",
    }
}
