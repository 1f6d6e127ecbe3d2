//! dllm's `MDLMSampler` (mdlm.md §4.2) for LLaDA-style models: blocks of masks, a rounded transfer
//! schedule per block, low-confidence remasking. Temperature 0 is greedy and deterministic.
//!
//! Only the masked positions of the current block go through the LM head each step; choices are
//! made on the host (argmax / Gumbel-max in f64, softmax confidence), so the canvas never needs a
//! full `[B·L, V]` logits tensor.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::schedule::dllm_transfer_counts;
use crate::model::transformer::gather_rows;
use crate::model::MaskedDiffusionLm;
use crate::rng::SplitMix64;
use crate::tokenizer::SpecialTokens;

#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    pub max_new_tokens: usize,
    pub block_size: usize,
    pub steps: usize,
    /// 0 = greedy.
    pub temperature: f64,
    /// Token ids never generated (their logits are set to −inf before choosing).
    pub suppress_tokens: Vec<u32>,
    pub seed: u64,
    /// Which masked positions are committed first.
    pub remasking: Remasking,
}

/// The order in which a sampler commits masked positions (dllm's `remasking`, Dream's `alg`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Remasking {
    /// The model's own: the most confident first for LLaDA (softmax probability), the lowest
    /// entropy first for Dream.
    #[default]
    Model,
    /// The highest softmax probability first (LLaDA's `low_confidence`, Dream's `maskgit_plus`).
    LowConfidence,
    /// A uniformly random order (LLaDA's `random`, Dream's `origin`).
    Random,
}

/// Ids that ends an answer (EOS and EOT); everything from the first one on is dropped.
#[derive(Clone, Debug)]
pub struct SamplerTokens {
    pub mask: u32,
    pub pad: u32,
    pub stops: Vec<u32>,
}

impl From<&SpecialTokens> for SamplerTokens {
    /// Masks are the tokenizer's mask id; rows are padded with EOS; EOS and EOT end an answer.
    fn from(special: &SpecialTokens) -> Self {
        Self {
            mask: special.mask,
            pad: special.eos,
            stops: [Some(special.eos), special.eot]
                .into_iter()
                .flatten()
                .collect(),
        }
    }
}

/// Dream's `eps` of `diffusion_generate` (the last time step of its linspace).
pub const DREAM_EPS: f32 = 1e-3;

/// Generates with the model's own sampler: Dream's entropy sampler for architectures that shift
/// logits, dllm's MDLM sampler otherwise.
pub fn generate_by_architecture<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    prompts: &[Vec<u32>],
    tokens: &SamplerTokens,
    cfg: &SamplerConfig,
    device: &B::Device,
    on_step: impl FnMut(&StepView),
) -> Vec<Vec<u32>> {
    if model.config.architecture.shifts_logits() {
        generate_dream(model, prompts, tokens, cfg, DREAM_EPS, device, on_step)
    } else {
        generate(model, prompts, tokens, cfg, device, on_step)
    }
}

/// What the step callback sees (the GUI animates denoising from it).
pub struct StepView<'a> {
    pub block: usize,
    pub step: usize,
    /// Answer slots of every row after this step (mask id where still masked).
    pub answers: Vec<&'a [u32]>,
}

/// Generates answers for a batch of prompts; returns each row's answer ids, truncated at the first stop id.
pub fn generate<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    prompts: &[Vec<u32>],
    tokens: &SamplerTokens,
    cfg: &SamplerConfig,
    device: &B::Device,
    mut on_step: impl FnMut(&StepView),
) -> Vec<Vec<u32>> {
    let batch = prompts.len();
    if batch == 0 || cfg.max_new_tokens == 0 {
        return vec![Vec::new(); batch];
    }
    let gen = cfg.max_new_tokens;
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0) + gen;
    let (mut canvas, pad_tensor) = padded_canvas::<B>(prompts, tokens, gen, width, device);
    let block_size = cfg.block_size.clamp(1, gen);
    let blocks = gen.div_ceil(block_size);
    let steps_per_block = cfg.steps.div_ceil(blocks).max(1);
    let mut rng = SplitMix64(cfg.seed);

    for block in 0..blocks {
        let span = |p: &Vec<u32>| {
            (
                p.len() + block * block_size,
                p.len() + ((block + 1) * block_size).min(gen),
            )
        };
        let schedules: Vec<Vec<usize>> = prompts
            .iter()
            .zip(&canvas)
            .map(|(p, row)| {
                let (lo, hi) = span(p);
                dllm_transfer_counts(
                    row[lo..hi].iter().filter(|&&t| t == tokens.mask).count(),
                    steps_per_block,
                )
            })
            .collect();
        let block_steps = schedules.iter().map(Vec::len).max().unwrap_or(0);
        for step in 0..block_steps {
            let rows = masked_in_block(prompts, &canvas, tokens.mask, span);
            if rows.is_empty() {
                break;
            }
            let index = rows
                .iter()
                .map(|&(b, pos)| (b * width + pos) as i64)
                .collect();
            let (logits, vocab) = logits_at(
                model,
                &canvas,
                width,
                Some(pad_tensor.clone()),
                index,
                device,
            );

            // Choose a token and its confidence for every candidate position.
            let mut choices: Vec<Vec<(f64, usize, u32)>> = vec![Vec::new(); batch];
            for (r, &(b, pos)) in rows.iter().enumerate() {
                let row = candidate_logits(&logits[r * vocab..(r + 1) * vocab], cfg);
                let (confidence, token) = mdlm_choice(&row, cfg.temperature, &mut rng);
                let score = match cfg.remasking {
                    Remasking::Random => rng.uniform(),
                    Remasking::Model | Remasking::LowConfidence => confidence,
                };
                choices[b].push((score, pos, token as u32));
            }
            // Commit the most confident `k` of each row.
            commit_best(&mut canvas, choices, |b| {
                schedules[b].get(step).copied().unwrap_or(0)
            });
            let answers: Vec<&[u32]> = prompts
                .iter()
                .zip(&canvas)
                .map(|(p, row)| &row[p.len()..p.len() + gen])
                .collect();
            on_step(&StepView {
                block,
                step,
                answers,
            });
        }
    }
    prompts
        .iter()
        .zip(&canvas)
        .map(|(p, row)| until_stop(&row[p.len()..p.len() + gen], tokens))
        .collect()
}

/// Each prompt at the start of its row, followed by `gen` masks, then padding up to `width`; and
/// the padding mask (`true` on the padding, which is not attended).
fn padded_canvas<B: Backend>(
    prompts: &[Vec<u32>],
    tokens: &SamplerTokens,
    gen: usize,
    width: usize,
    device: &B::Device,
) -> (Vec<Vec<u32>>, Tensor<B, 2, Bool>) {
    let canvas: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            let mut row = p.clone();
            row.extend(std::iter::repeat_n(tokens.mask, gen));
            row.resize(width, tokens.pad);
            row
        })
        .collect();
    let padding: Vec<bool> = prompts
        .iter()
        .flat_map(|p| (0..width).map(move |i| i >= p.len() + gen))
        .collect();
    let pad_tensor =
        Tensor::<B, 2, Bool>::from_data(TensorData::new(padding, [prompts.len(), width]), device);
    (canvas, pad_tensor)
}

/// Masked positions of the current block (`span` of each row), per row, as `(row, position)`.
fn masked_in_block(
    prompts: &[Vec<u32>],
    canvas: &[Vec<u32>],
    mask: u32,
    span: impl Fn(&Vec<u32>) -> (usize, usize),
) -> Vec<(usize, usize)> {
    let mut rows = Vec::new();
    for (b, p) in prompts.iter().enumerate() {
        let (lo, hi) = span(p);
        for pos in lo..hi {
            if canvas[b][pos] == mask {
                rows.push((b, pos));
            }
        }
    }
    rows
}

/// The model's logits on the host (f32, `[index.len(), vocab]` row-major) at the flat positions
/// `index` of the canvas (`[canvas.len(), width]`), and `vocab`. Only those rows go through the
/// LM head.
fn logits_at<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    canvas: &[Vec<u32>],
    width: usize,
    padding: Option<Tensor<B, 2, Bool>>,
    index: Vec<i64>,
    device: &B::Device,
) -> (Vec<f32>, usize) {
    let flat_ids: Vec<i64> = canvas.iter().flatten().map(|&t| t as i64).collect();
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(flat_ids, [canvas.len(), width]), device);
    let hidden = model.forward_hidden(ids, padding);
    let rows = index.len();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [rows]), device);
    let logits = model.logits_for_rows(gather_rows(hidden, index));
    let vocab = logits.dims()[1];
    let logits: Vec<f32> = logits
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("f32 logits");
    (logits, vocab)
}

/// One position's logits in f64, the suppressed tokens at −inf.
fn candidate_logits(logits: &[f32], cfg: &SamplerConfig) -> Vec<f64> {
    let mut row: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    for &s in &cfg.suppress_tokens {
        if let Some(v) = row.get_mut(s as usize) {
            *v = f64::NEG_INFINITY;
        }
    }
    row
}

/// dllm's choice at one position: the argmax of the logits (Gumbel-max above temperature 0), and
/// its softmax probability as the confidence.
fn mdlm_choice(row: &[f64], temperature: f64, rng: &mut SplitMix64) -> (f64, usize) {
    let token = if temperature > 0.0 {
        argmax(row.iter().map(|&l| l + temperature * gumbel(rng)))
    } else {
        argmax(row.iter().copied())
    };
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let denom: f64 = row.iter().map(|&l| (l - max).exp()).sum();
    let confidence = (row[token] - max).exp() / denom;
    (confidence, token)
}

/// Commits the best `k(row)` candidates `(score, position, token)` of each row (at most all of
/// them; ties: leftmost first, as a stable top-k).
fn commit_best(
    canvas: &mut [Vec<u32>],
    choices: Vec<Vec<(f64, usize, u32)>>,
    k: impl Fn(usize) -> usize,
) {
    for (b, mut cands) in choices.into_iter().enumerate() {
        let k = k(b).min(cands.len());
        cands.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        for &(_, pos, token) in &cands[..k] {
            canvas[b][pos] = token;
        }
    }
}

/// An answer slot up to its first stop id.
fn until_stop(answer: &[u32], tokens: &SamplerTokens) -> Vec<u32> {
    let end = answer
        .iter()
        .position(|t| tokens.stops.contains(t))
        .unwrap_or(answer.len());
    answer[..end].to_vec()
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Standard Gumbel noise: argmax(l + T·g) samples from softmax(l/T).
fn gumbel(rng: &mut SplitMix64) -> f64 {
    let u = rng.uniform().max(1e-300);
    -(-u.ln()).ln()
}

/// Dream's `diffusion_generate` with `alg="entropy"` (mdlm.md §3.6): logits shifted right, the
/// per-step count `floor(masks · (1 − s/t))` over `linspace(1, eps, steps+1)` with the last step
/// taking all, and positions committed in order of negative entropy. Rows are grouped by prompt
/// length so that no padding (and no position shift) is ever needed.
pub fn generate_dream<B: Backend>(
    model: &MaskedDiffusionLm<B>,
    prompts: &[Vec<u32>],
    tokens: &SamplerTokens,
    cfg: &SamplerConfig,
    eps: f32,
    device: &B::Device,
    mut on_step: impl FnMut(&StepView),
) -> Vec<Vec<u32>> {
    let gen = cfg.max_new_tokens;
    let mut results = vec![Vec::new(); prompts.len()];
    let mut lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut rng = SplitMix64(cfg.seed);
    let timesteps: Vec<f32> = (0..=cfg.steps)
        .map(|i| 1.0 + (eps - 1.0) * i as f32 / cfg.steps as f32)
        .collect();
    for len in lengths {
        let members: Vec<usize> = (0..prompts.len())
            .filter(|&i| prompts[i].len() == len)
            .collect();
        let width = len + gen;
        let mut canvas: Vec<Vec<u32>> = members
            .iter()
            .map(|&i| {
                prompts[i]
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(tokens.mask, gen))
                    .collect()
            })
            .collect();
        for i in 0..cfg.steps {
            let masked: Vec<(usize, usize)> = (0..canvas.len())
                .flat_map(|b| (len..width).map(move |p| (b, p)))
                .filter(|&(b, p)| canvas[b][p] == tokens.mask)
                .collect();
            if masked.is_empty() {
                break;
            }
            // Position p is predicted from the hidden state at p − 1.
            let index = masked
                .iter()
                .map(|&(b, p)| (b * width + p - 1) as i64)
                .collect();
            let (logits, vocab) = logits_at(model, &canvas, width, None, index, device);
            let per_row = masked.len() / canvas.len();
            let n = if i + 1 < cfg.steps {
                let (t, s) = (timesteps[i], timesteps[i + 1]);
                (per_row as f32 * (1.0 - s / t)) as usize
            } else {
                per_row
            };
            let mut choices: Vec<Vec<(f64, usize, u32)>> = vec![Vec::new(); canvas.len()];
            for (r, &(b, p)) in masked.iter().enumerate() {
                let row = candidate_logits(&logits[r * vocab..(r + 1) * vocab], cfg);
                let (neg_entropy, probability, token) =
                    dream_choice(row, cfg.temperature, &mut rng);
                let score = match cfg.remasking {
                    Remasking::Model => neg_entropy,
                    Remasking::LowConfidence => probability,
                    Remasking::Random => rng.uniform(),
                };
                choices[b].push((score, p, token as u32));
            }
            commit_best(&mut canvas, choices, |_| n);
            let answers: Vec<&[u32]> = canvas.iter().map(|row| &row[len..]).collect();
            on_step(&StepView {
                block: 0,
                step: i,
                answers,
            });
        }
        for (row, &i) in canvas.iter().zip(&members) {
            results[i] = until_stop(&row[len..], tokens);
        }
    }
    results
}

/// Dream's choice at one position: a token sampled from softmax(logits / T) (the argmax at
/// temperature 0), the negative entropy of that distribution (Dream's confidence) and the
/// token's probability.
fn dream_choice(mut row: Vec<f64>, temperature: f64, rng: &mut SplitMix64) -> (f64, f64, usize) {
    if temperature > 0.0 {
        row.iter_mut().for_each(|l| *l /= temperature);
    }
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let denom: f64 = row.iter().map(|&l| (l - max).exp()).sum();
    let probs: Vec<f64> = row.iter().map(|&l| (l - max).exp() / denom).collect();
    let token = if temperature > 0.0 {
        sample_categorical(&probs, rng)
    } else {
        argmax(probs.iter().copied())
    };
    let neg_entropy: f64 = probs.iter().map(|&q| q * (q + 1e-10).ln()).sum();
    (neg_entropy, probs[token], token)
}

fn sample_categorical(probs: &[f64], rng: &mut SplitMix64) -> usize {
    let mut u = rng.uniform();
    for (i, &p) in probs.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    probs.len() - 1
}
