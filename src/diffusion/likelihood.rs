//! Likelihood estimators for masked-diffusion LMs (mdlm.md §1.8, §2.4). There is no teacher-forced
//! likelihood: both estimators mask answer positions and score the model's predictions there.
//!
//! - LLaDA's Monte-Carlo conditional log-likelihood: stratified mask counts, `Σ CE / (l/L)`, a bound on
//!   `log p(answer | prompt)` summed over answer tokens.
//! - MDU's "Eq. 14" estimator: `l ~ U{1..L}` per sample, `Σ CE / l`, a per-token average NLL;
//!   `probability = exp(−nll)`.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::model::precision::at_least_f32;
use crate::model::transformer::gather_rows;
use crate::model::MaskedDiffusionLm;
use crate::rng::SplitMix64;

/// One scoring problem: `prompt` then `answer`, mask id, and whether logits are right-shifted (Dream).
pub struct Scored<'a> {
    pub prompt: &'a [u32],
    pub answer: &'a [u32],
    pub mask_id: u32,
    pub shift_logits: bool,
}

/// `Σ_{i∈mask} −log p(answer_i | masked sequence)` for each mask set (answer-relative positions),
/// run `batch_size` sequences at a time.
pub fn masked_answer_nll<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    s: &Scored,
    masks: &[Vec<usize>],
    batch_size: usize,
    device: &B::Device,
) -> Vec<f64> {
    debug_assert_eq!(s.shift_logits, model.config.architecture.shifts_logits());
    let queries: Vec<MaskedQuery> = masks
        .iter()
        .map(|m| MaskedQuery {
            prompt: s.prompt,
            answer: s.answer,
            mask: m.clone(),
        })
        .collect();
    // Every row has the same length, so the padding id is never used.
    batched_masked_nll(model, &queries, s.mask_id, s.mask_id, batch_size, device)
}

/// LLaDA `get_log_likelihood`: `mc_num` samples in batches of `batch_size`; in each batch the mask
/// counts are stratified over 1..=L from a random start. Returns the log-likelihood bound (nats).
pub fn llada_log_likelihood<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    s: &Scored,
    mc_num: usize,
    batch_size: usize,
    rng: &mut SplitMix64,
    device: &B::Device,
) -> f64 {
    let l = s.answer.len();
    if l == 0 {
        return 0.0;
    }
    let b = batch_size.max(1);
    let mut batch_losses = Vec::new();
    for _ in 0..(mc_num / b).max(1) {
        let k = rng.range(1, l + 1) as f64;
        let counts: Vec<usize> = (0..b)
            .map(|r| {
                let v = if b > 1 {
                    k + (b - 1) as f64 * l as f64 / b as f64 * r as f64 / (b - 1) as f64
                } else {
                    k
                };
                (((v.round_ties_even() as usize) - 1) % l) + 1
            })
            .collect();
        let masks: Vec<Vec<usize>> = counts.iter().map(|&n| random_subset(rng, l, n)).collect();
        let sums = masked_answer_nll(model, s, &masks, b, device);
        let loss: f64 = sums
            .iter()
            .zip(&counts)
            .map(|(sum, &n)| sum / (n as f64 / l as f64))
            .sum::<f64>()
            / b as f64;
        batch_losses.push(loss);
    }
    -batch_losses.iter().sum::<f64>() / batch_losses.len() as f64
}

/// MDU's Eq. 14 estimator: the per-token average NLL over `samples` random maskings.
pub fn eq14_nll<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    s: &Scored,
    samples: usize,
    batch_size: usize,
    rng: &mut SplitMix64,
    device: &B::Device,
) -> f64 {
    let l = s.answer.len();
    if l == 0 || samples == 0 {
        return 0.0;
    }
    let masks: Vec<Vec<usize>> = (0..samples)
        .map(|_| {
            let n = rng.range(1, l + 1);
            random_subset(rng, l, n)
        })
        .collect();
    let sums = masked_answer_nll(model, s, &masks, batch_size, device);
    sums.iter()
        .zip(&masks)
        .map(|(sum, m)| sum / m.len() as f64)
        .sum::<f64>()
        / samples as f64
}

/// `n` distinct positions of `0..len`, uniformly (partial Fisher–Yates), ascending.
pub fn random_subset(rng: &mut SplitMix64, len: usize, n: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..len).collect();
    for i in 0..n.min(len) {
        let j = rng.range(i, len);
        all.swap(i, j);
    }
    let mut picked = all[..n.min(len)].to_vec();
    picked.sort_unstable();
    picked
}

/// One row of a batched likelihood query: `answer` after `prompt`, with `mask` (answer-relative
/// positions) replaced by the mask id.
pub struct MaskedQuery<'a> {
    pub prompt: &'a [u32],
    pub answer: &'a [u32],
    pub mask: Vec<usize>,
}

/// `Σ_{i∈mask} −log p(answer_i | masked row)` for many rows of different lengths, `batch_size`
/// rows per forward. Rows are right-padded with `pad` under a key-padding mask, so each result
/// equals the unpadded single-sequence value; rows are batched in order of length, which keeps
/// padding (wasted work) small.
pub fn batched_masked_nll<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    queries: &[MaskedQuery],
    mask_id: u32,
    pad: u32,
    batch_size: usize,
    device: &B::Device,
) -> Vec<f64> {
    batched_token_stats(model, queries, (mask_id, pad), false, batch_size, device)
        .iter()
        .map(|row| row.iter().map(|t| -(t.logp as f64)).sum())
        .collect()
}

/// What the model predicts at one masked answer position: `log p(answer_i)`, and, when asked
/// for, the mean and variance of `log p` over the vocabulary under its own distribution
/// (`mu = Σ p·log p`, `sigma2 = Σ p·(log p)² − mu²`; Min-K %++ standardises with them).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenStat {
    pub logp: f32,
    pub mu: f32,
    pub sigma2: f32,
}

/// Every query's masked positions' [`TokenStat`]s, in the order of `query.mask`, `batch_size`
/// rows per forward (padded and ordered as [`batched_masked_nll`] does). `tokens` is
/// `(mask id, padding id)`; `moments` asks for `mu` and `sigma2` (zero otherwise).
pub fn batched_token_stats<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    queries: &[MaskedQuery],
    tokens: (u32, u32),
    moments: bool,
    batch_size: usize,
    device: &B::Device,
) -> Vec<Vec<TokenStat>> {
    let mut by_length: Vec<usize> = (0..queries.len()).collect();
    by_length.sort_by_key(|&k| queries[k].prompt.len() + queries[k].answer.len());
    let mut out = vec![Vec::new(); queries.len()];
    for order in by_length.chunks(batch_size.max(1)) {
        let chunk: Vec<&MaskedQuery> = order.iter().map(|&k| &queries[k]).collect();
        let Some(rows) = masked_log_probs(model, &chunk, tokens, device) else {
            continue;
        };
        let f32s = |t: Tensor<B, 2>| -> Vec<f32> {
            t.into_data().convert::<f32>().into_vec().expect("f32")
        };
        let logp = f32s(rows.log_probs.clone().gather(1, rows.targets));
        let (mu, sigma2) = if moments {
            let p = rows.log_probs.clone().exp();
            let mu = (p.clone() * rows.log_probs.clone()).sum_dim(1);
            let second = (p * rows.log_probs.powi_scalar(2)).sum_dim(1);
            let var = second - mu.clone().powi_scalar(2);
            (f32s(mu), f32s(var))
        } else {
            (vec![0.0; logp.len()], vec![0.0; logp.len()])
        };
        for (i, &b) in rows.owner.iter().enumerate() {
            out[order[b]].push(TokenStat {
                logp: logp[i],
                mu: mu[i],
                sigma2: sigma2[i],
            });
        }
    }
    out
}

/// One forward's masked positions: log-softmax rows `[n, vocab]` (at least f32), the answer ids
/// `[n, 1]`, and which query of the chunk each row belongs to (queries in order, positions in
/// `mask` order).
pub struct MaskedRows<B: Backend> {
    pub log_probs: Tensor<B, 2>,
    pub targets: Tensor<B, 2, Int>,
    pub owner: Vec<usize>,
}

/// Runs `chunk` as one right-padded batch (under a key-padding mask) and returns the log
/// probabilities at its masked answer positions; `None` when no query masks anything. Generic over
/// the backend, so an autodiff model gets a differentiable result.
pub fn masked_log_probs<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    chunk: &[&MaskedQuery],
    (mask_id, pad): (u32, u32),
    device: &B::Device,
) -> Option<MaskedRows<B>> {
    let shift = model.config.architecture.shifts_logits();
    let width = chunk
        .iter()
        .map(|q| q.prompt.len() + q.answer.len())
        .max()
        .unwrap_or(0);
    let mut ids = Vec::with_capacity(chunk.len() * width);
    let mut padding = Vec::with_capacity(chunk.len() * width);
    let (mut rows, mut targets, mut owner) = (Vec::new(), Vec::new(), Vec::new());
    for (b, q) in chunk.iter().enumerate() {
        let lp = q.prompt.len();
        let mut seq: Vec<u32> = q.prompt.iter().chain(q.answer).copied().collect();
        for &i in &q.mask {
            seq[lp + i] = mask_id;
            let source = if shift {
                (lp + i).saturating_sub(1)
            } else {
                lp + i
            };
            rows.push((b * width + source) as i64);
            targets.push(q.answer[i] as i64);
            owner.push(b);
        }
        padding.extend((0..width).map(|p| p >= seq.len()));
        seq.resize(width, pad);
        ids.extend(seq.iter().map(|&t| t as i64));
    }
    if rows.is_empty() {
        return None;
    }
    let n = rows.len();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [chunk.len(), width]), device);
    let padding = Tensor::<B, 2, burn::tensor::Bool>::from_data(
        TensorData::new(padding, [chunk.len(), width]),
        device,
    );
    let hidden = model.forward_hidden(ids, Some(padding));
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [n]), device);
    let logits = at_least_f32(model.logits_for_rows(gather_rows(hidden, index)));
    Some(MaskedRows {
        log_probs: log_softmax(logits, 1),
        targets: Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 1]), device),
        owner,
    })
}

/// Which likelihood estimator a probability comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// MDU's Eq. 14: `l ~ U{1..L}`, `Σ CE / l`, averaged over samples (per-token NLL).
    Eq14,
    /// LLaDA's Monte-Carlo bound with stratified mask counts, divided by the answer length.
    LladaPerToken,
}

/// Per-token NLL of each `(prompt, answer)` pair under `estimator`, `samples` maskings each; pair
/// `k` draws its masks from `SplitMix64(seed + k)`, so results do not depend on batching.
pub fn per_token_nll<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    pairs: &[(&[u32], &[u32])],
    estimator: Estimator,
    samples: usize,
    tokens: (u32, u32),
    batch_size: usize,
    seed: u64,
    device: &B::Device,
) -> Vec<f64> {
    let (mask_id, pad) = tokens;
    let samples = samples.max(1);
    let mut queries = Vec::with_capacity(pairs.len() * samples);
    for (k, &(prompt, answer)) in pairs.iter().enumerate() {
        let l = answer.len();
        let mut rng = SplitMix64(seed.wrapping_add(k as u64));
        let counts: Vec<usize> = match estimator {
            _ if l == 0 => vec![0; samples],
            Estimator::Eq14 => (0..samples).map(|_| rng.range(1, l + 1)).collect(),
            Estimator::LladaPerToken => {
                // LLaDA stratifies the counts over 1..=L from a random start within one batch.
                let start = rng.range(1, l + 1) as f64;
                (0..samples)
                    .map(|r| {
                        let v = if samples > 1 {
                            start + (l as f64) * r as f64 / samples as f64
                        } else {
                            start
                        };
                        (((v.round_ties_even() as usize) - 1) % l) + 1
                    })
                    .collect()
            }
        };
        for n in counts {
            queries.push(MaskedQuery {
                prompt,
                answer,
                mask: random_subset(&mut rng, l, n),
            });
        }
    }
    let sums = batched_masked_nll(model, &queries, mask_id, pad, batch_size, device);
    pairs
        .iter()
        .enumerate()
        .map(|(k, &(_, answer))| {
            let l = answer.len() as f64;
            if l == 0.0 {
                return 0.0;
            }
            let rows = &queries[k * samples..(k + 1) * samples];
            let s = &sums[k * samples..(k + 1) * samples];
            let total: f64 = rows
                .iter()
                .zip(s)
                .map(|(q, sum)| match estimator {
                    Estimator::Eq14 => sum / q.mask.len() as f64,
                    // Σ CE / (n/L) is a bound on −log p(answer); ÷ L makes it per token.
                    Estimator::LladaPerToken => sum / (q.mask.len() as f64 / l) / l,
                })
                .sum();
            total / samples as f64
        })
        .collect()
}
