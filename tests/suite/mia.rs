//! Membership-inference scores (`mdu_workbench::eval::mia`): hand-checked cases, then the numbers
//! `scripts/make_mia_fixture.py` computed with scikit-learn's `roc_auc_score`, numpy (open-unlearning's
//! Min-K % and Min-K %++ code) and Python's zlib.

use mdu_workbench::eval::mia::{auc, min_k, min_k_plus_plus, num_k, privleak, zlib_len};
use serde::Deserialize;

use crate::common::fixture;

#[test]
fn hand_checked_scores() {
    // Forget scores all lower than holdout's: told apart perfectly.
    assert_eq!(auc(&[1.0, 2.0], &[3.0, 4.0]), Some(1.0));
    assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), Some(0.0));
    // Pairs (holdout > forget): 2>1, 2=2 (½), 3>1, 3>2 → 3.5 of 4.
    assert_eq!(auc(&[1.0, 2.0], &[2.0, 3.0]), Some(0.875));
    assert_eq!(auc(&[5.0; 3], &[5.0; 4]), Some(0.5));
    assert_eq!(auc(&[], &[1.0]), None);
    // The two lowest of four log-probs: −(−4 − 3)/2.
    assert_eq!(min_k(&[-1.0, -2.0, -3.0, -4.0], 0.5), 3.5);
    assert_eq!(min_k(&[], 0.2), 0.0);
    // At least one value, and Python's truncation of the product.
    assert_eq!(num_k(3, 0.2), 1);
    assert_eq!(num_k(10, 0.7), 7);
    // Standardised: (−1 + 2)/1 = 1 and (−3 + 2)/2 = −0.5; the lower one of two at k = 0.5.
    assert_eq!(
        min_k_plus_plus(&[-1.0, -3.0], &[-2.0, -2.0], &[1.0, 4.0], 0.5),
        0.5
    );
    // A variance below 1e-6 is clamped: (−1 − (−0.5)) / √1e-6 = −500.
    assert!((min_k_plus_plus(&[-1.0], &[-0.5], &[0.0], 0.2) - 500.0).abs() < 1e-9);
    // privleak: the retain-only model's AUC is the zero point, MUSE's 1 − AUC the scale.
    assert_eq!(privleak(0.7, 0.7), 0.0);
    assert!((privleak(1.0, 0.5) + 100.0).abs() < 1e-6);
    assert!((privleak(0.5, 0.6) - 25.0).abs() < 1e-6);
}

#[derive(Deserialize)]
struct Cases {
    auc: Vec<AucCase>,
    min_k: Vec<MinKCase>,
    min_k_plus_plus: Vec<MinKppCase>,
    zlib: Vec<ZlibCase>,
    privleak: Vec<PrivleakCase>,
}

#[derive(Deserialize)]
struct AucCase {
    name: String,
    forget: Vec<f64>,
    holdout: Vec<f64>,
    auc: f64,
}

#[derive(Deserialize)]
struct MinKCase {
    name: String,
    logprobs: Vec<f64>,
    k: f64,
    score: f64,
}

#[derive(Deserialize)]
struct MinKppCase {
    name: String,
    logprobs: Vec<f64>,
    mu: Vec<f64>,
    sigma2: Vec<f64>,
    k: f64,
    score: f64,
}

#[derive(Deserialize)]
struct ZlibCase {
    text: String,
    compressed_len: usize,
}

#[derive(Deserialize)]
struct PrivleakCase {
    auc_unlearned: f64,
    auc_retain: f64,
    privleak: f64,
}

fn cases() -> Cases {
    let path = fixture("reference").join("mia_cases.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Relative closeness: the fixture's values are numpy's and scikit-learn's f64 results, whose
/// summation order differs from ours, so they agree to rounding, not bit for bit.
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-12 * want.abs().max(1.0)
}

#[test]
fn scores_match_scikit_learn_and_open_unlearning() {
    let c = cases();
    assert!(c.auc.len() >= 12 && c.min_k.len() >= 10 && c.min_k_plus_plus.len() >= 3);
    for case in &c.auc {
        let got = auc(&case.forget, &case.holdout).unwrap();
        assert!(close(got, case.auc), "{}: {got} vs {}", case.name, case.auc);
    }
    for case in &c.min_k {
        let got = min_k(&case.logprobs, case.k);
        assert!(
            close(got, case.score),
            "{}: {got} vs {}",
            case.name,
            case.score
        );
    }
    for case in &c.min_k_plus_plus {
        let got = min_k_plus_plus(&case.logprobs, &case.mu, &case.sigma2, case.k);
        // Standardising divides by √σ², so allow that rounding too.
        assert!(
            (got - case.score).abs() <= 1e-9 * case.score.abs().max(1.0),
            "{}: {got} vs {}",
            case.name,
            case.score
        );
    }
    for case in &c.privleak {
        let got = privleak(case.auc_unlearned, case.auc_retain);
        assert!((got - case.privleak).abs() <= 1e-9 * case.privleak.abs().max(1.0));
    }
}

/// The compressed lengths ZLib divides by: flate2 on zlib-rs, whose deflate is close to zlib's but
/// not bit-identical (flate2's default, miniz_oxide, is further off: 22 bytes for 40 × "a" where
/// zlib writes 12). On the fixture's texts (short answers, empty, repeated, Unicode, a
/// 2,000-character paragraph) most lengths equal CPython's `zlib.compress` (zlib 1.2.13); the rest
/// are within 8 % + 1 byte (an emoji line: 70 bytes where zlib writes 65), which moves a ZLib score
/// by as much.
#[test]
fn zlib_lengths_are_close_to_pythons() {
    let c = cases();
    assert!(c.zlib.len() >= 20);
    let mut exact = 0;
    let mut off = Vec::new();
    for case in &c.zlib {
        let got = zlib_len(&case.text);
        exact += usize::from(got == case.compressed_len);
        if got.abs_diff(case.compressed_len) as f64 > 0.08 * case.compressed_len as f64 + 1.0 {
            off.push(format!(
                "{:?}: {got} vs {}",
                case.text.chars().take(30).collect::<String>(),
                case.compressed_len
            ));
        }
    }
    assert!(off.is_empty(), "{off:?}");
    assert!(
        exact * 2 > c.zlib.len(),
        "only {exact} of {} exact",
        c.zlib.len()
    );
}
