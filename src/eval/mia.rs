//! Membership-inference scores as open-unlearning computes them (`src/evals/metrics/mia/` and
//! `privacy.py` in locuslab/open-unlearning), on per-item statistics that the caller gets from a
//! masked-diffusion model instead of an autoregressive one. Each function states open-unlearning's
//! formula; `tests/suite/mia.rs` checks them against numbers that `scripts/make_mia_fixture.py`
//! computed with numpy, scikit-learn and Python's zlib.
//!
//! The convention is open-unlearning's: higher scores look less like training data, forget items
//! are labelled 0 and holdout items 1, so an AUC of 1 means the forget set is perfectly told apart
//! from the holdout set (it is still remembered), and 0.5 means it cannot be.

use std::io::Write;

/// `roc_auc_score(labels, scores)` with the forget scores labelled 0 and the holdout scores 1: the
/// probability that a holdout item scores higher than a forget item, ties counting half (the
/// Mann–Whitney U statistic over n₀·n₁, which is what the ROC curve's trapezoids sum to). `None`
/// when either split is empty.
pub fn auc(forget: &[f64], holdout: &[f64]) -> Option<f64> {
    if forget.is_empty() || holdout.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = forget
        .iter()
        .map(|&s| (s, false))
        .chain(holdout.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over runs of equal scores (−0.0 and 0.0 are equal, as numpy compares them).
    let mut rank_sum_holdout = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum_holdout += mean_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (n0, n1) = (forget.len() as f64, holdout.len() as f64);
    let u = rank_sum_holdout - n1 * (n1 + 1.0) / 2.0;
    Some(u / (n0 * n1))
}

/// How many of `len` values Min-K % averages: `max(1, int(len·k))`, with Python's truncation of
/// the f64 product (10 × 0.7 = 7.000000000000001 → 7).
pub fn num_k(len: usize, k: f64) -> usize {
    ((len as f64 * k) as usize).max(1)
}

/// Min-K % Prob (Shi et al. 2024): minus the mean of the `num_k` lowest per-token log-probabilities;
/// 0 for an empty answer.
pub fn min_k(logprobs: &[f64], k: f64) -> f64 {
    lowest_mean(logprobs.to_vec(), k).map_or(0.0, |m| -m)
}

/// Min-K %++ (Zhang et al. 2024): each token's log-probability standardised by the mean and
/// variance of log p over the vocabulary at its position (`mu = Σ p·log p`,
/// `sigma2 = Σ p·(log p)² − mu²`, clamped below at 1e-6), then Min-K % of those.
pub fn min_k_plus_plus(logprobs: &[f64], mu: &[f64], sigma2: &[f64], k: f64) -> f64 {
    let standardised: Vec<f64> = logprobs
        .iter()
        .zip(mu)
        .zip(sigma2)
        .map(|((lp, m), s2)| (lp - m) / s2.max(1e-6).sqrt())
        .collect();
    lowest_mean(standardised, k).map_or(0.0, |m| -m)
}

fn lowest_mean(mut values: Vec<f64>, k: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = num_k(values.len(), k);
    Some(values[..n].iter().sum::<f64>() / n as f64)
}

/// The length of `zlib.compress(text.encode("utf-8"))` at zlib's default level 6, through
/// flate2's zlib-rs backend: most equal CPython's zlib on the test texts, the rest are within 8 %
/// (miniz_oxide, flate2's default, is further off: 22 bytes for 40 × "a" where zlib writes 12).
pub fn zlib_len(text: &str) -> usize {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder
        .write_all(text.as_bytes())
        .expect("writing to memory cannot fail");
    encoder
        .finish()
        .expect("writing to memory cannot fail")
        .len()
}

/// ZLib (Carlini et al. 2021): the average per-token loss over the answer's zlib-compressed length.
pub fn zlib_score(avg_loss: f64, text: &str) -> f64 {
    avg_loss / zlib_len(text) as f64
}

/// open-unlearning's `privleak` (MUSE's convention): with AUCs turned to `1 − AUC`,
/// `(score − ref) / (ref + 1e-10) · 100`, where `score` is the unlearned model's forget-vs-holdout
/// AUC and `ref` the retain-only model's. 0 is as private as never having trained on the forget set;
/// negative means the forget set is still told apart (more than the retain-only model would).
pub fn privleak(auc_unlearned: f64, auc_retain_only: f64) -> f64 {
    let (score, reference) = (1.0 - auc_unlearned, 1.0 - auc_retain_only);
    (score - reference) / (reference + 1e-10) * 100.0
}
