//! `mdu_workbench::eval::stats` against scipy 1.17.1 / numpy 2.4.6, golden values from
//! `scripts/make_stats_fixture.py` (`tests/fixtures/reference/stats_cases.json`).
//!
//! Tolerances:
//! - KS statistic D: exact (bit for bit); the exact/asymptotic path taken: the same as scipy.
//! - KS p-value: relative 1e-9 when scipy's p >= 1e-300; below that (down to 0, where scipy
//!   underflows) an absolute 1e-300.
//! - kstwo.sf (the asymptotic branch on its own): relative 1e-9 plus an absolute 1e-14 floor for
//!   the branches scipy itself evaluates as 1 − CDF (their last bits are BLAS/rounding noise).
//! - np.mean, naive mean, hmean: exact.
//! - Truth ratios and aggregators: relative 1e-15 (numpy's AVX-512 `np.exp` may differ from
//!   libm's `exp` by one ulp).

use mdu_workbench::eval::stats::{
    closer_to_1_better, hmean, ks_2samp, ks_2samp_pvalue, kstwo_sf, mdu_truth_ratio, naive_mean,
    np_mean, prob_mean, prob_truth_ratio, true_better, truth_ratio, wrong_prob,
};
use serde::Deserialize;

use crate::common::fixture;

#[derive(Deserialize)]
#[serde(untagged)]
enum Sample {
    Values(Vec<f64>),
    Lcg {
        n: u64,
        mul: u64,
        add: u64,
        modulus: u64,
        scale: f64,
        offset: f64,
    },
}

impl Sample {
    fn values(&self) -> Vec<f64> {
        match self {
            Sample::Values(v) => v.clone(),
            Sample::Lcg {
                n,
                mul,
                add,
                modulus,
                scale,
                offset,
            } => (0..*n)
                .map(|i| ((i * mul + add) % modulus) as f64 * scale + offset)
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct KsCase {
    name: String,
    a: Sample,
    b: Sample,
    statistic: f64,
    pvalue: f64,
    exact: bool,
}

#[derive(Deserialize)]
struct KstwoCase {
    n: f64,
    x: f64,
    sf: f64,
}

#[derive(Deserialize)]
struct MeanCase {
    values: Vec<f64>,
    np_mean: f64,
    naive_mean: f64,
}

#[derive(Deserialize)]
struct HmeanCase {
    values: Vec<f64>,
    hmean: f64,
}

#[derive(Deserialize)]
struct TruthRatioCase {
    correct_nll: Vec<f64>,
    perturbed_nll: Vec<Vec<f64>>,
    truth_ratio: Vec<f64>,
    prob_truth_ratio: Vec<f64>,
    correct_prob: Vec<f64>,
    wrong_prob: Vec<f64>,
    closer_to_1_better: f64,
    true_better: f64,
    prob_mean: f64,
    mdu_truth_ratio: Vec<f64>,
    mdu_truth_ratio_mean: f64,
}

#[derive(Deserialize)]
struct ModelUtility {
    terms: Vec<f64>,
    model_utility: f64,
}

#[derive(Deserialize)]
struct Cases {
    ks: Vec<KsCase>,
    kstwo: Vec<KstwoCase>,
    mean: Vec<MeanCase>,
    hmean: Vec<HmeanCase>,
    truth_ratio: Vec<TruthRatioCase>,
    model_utility: ModelUtility,
}

fn cases() -> Cases {
    let path = fixture("reference").join("stats_cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_rel(what: &str, ours: f64, expected: f64, rel: f64) {
    let ok = ours == expected || (ours - expected).abs() <= rel * expected.abs();
    assert!(
        ok,
        "{what}: ours {ours:e}, scipy/numpy {expected:e}, rel {:e}",
        ((ours - expected) / expected).abs()
    );
}

#[test]
fn ks_2samp_matches_scipy() {
    let cases = cases();
    assert!(cases.ks.len() >= 40);
    for case in &cases.ks {
        let (a, b) = (case.a.values(), case.b.values());
        let r = ks_2samp(&a, &b).unwrap();
        assert_eq!(
            r.statistic.to_bits(),
            case.statistic.to_bits(),
            "{}: D ours {} scipy {}",
            case.name,
            r.statistic,
            case.statistic
        );
        assert_eq!(r.exact, case.exact, "{}: exact path", case.name);
        if case.pvalue >= 1e-300 {
            assert_rel(&case.name, r.pvalue, case.pvalue, 1e-9);
        } else {
            assert!(
                (r.pvalue - case.pvalue).abs() <= 1e-300,
                "{}: ours {:e}, scipy {:e}",
                case.name,
                r.pvalue,
                case.pvalue
            );
        }
        assert_eq!(ks_2samp_pvalue(&a, &b), Some(r.pvalue));
    }
}

#[test]
fn ks_2samp_keeps_tiny_p_values() {
    // 400 vs 400 fully separated: p = 2 / binom(800, 400).
    let a: Vec<f64> = (0..400).map(|i| i as f64).collect();
    let b: Vec<f64> = (0..400).map(|i| 1000.0 + i as f64).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.statistic, 1.0);
    assert_rel("400v400", r.pvalue, 1.0635896769518578e-239, 1e-9);
    assert!(r.exact);
}

#[test]
fn ks_2samp_edge_inputs() {
    assert_eq!(ks_2samp(&[], &[1.0]), None);
    assert_eq!(ks_2samp_pvalue(&[1.0], &[]), None);
    let r = ks_2samp(&[1.0, f64::NAN], &[1.0, 2.0]).unwrap();
    assert!(r.statistic.is_nan() && r.pvalue.is_nan());
    let same = [0.3, 0.1, 0.2];
    let r = ks_2samp(&same, &same).unwrap();
    assert_eq!((r.statistic, r.pvalue), (0.0, 1.0));
    // Symmetric in its arguments.
    let a = [0.1, 0.5, 0.7, 0.9, 1.3];
    let b = [0.2, 0.25, 0.3, 0.6, 0.65, 0.8, 2.0];
    assert_eq!(ks_2samp(&a, &b), ks_2samp(&b, &a));
}

#[test]
fn kstwo_sf_matches_scipy_on_every_branch() {
    let cases = cases();
    for c in &cases.kstwo {
        let ours = kstwo_sf(c.x, c.n);
        let ok = ours == c.sf || (ours - c.sf).abs() <= 1e-9 * c.sf.abs() + 1e-14;
        assert!(
            ok,
            "kstwo.sf(x={:e}, n={}): ours {:e}, scipy {:e}",
            c.x, c.n, ours, c.sf
        );
    }
}

#[test]
fn means_match_numpy_bit_for_bit() {
    for c in &cases().mean {
        assert_eq!(
            np_mean(&c.values).to_bits(),
            c.np_mean.to_bits(),
            "np.mean n={}",
            c.values.len()
        );
        assert_eq!(
            naive_mean(&c.values).to_bits(),
            c.naive_mean.to_bits(),
            "sum/len n={}",
            c.values.len()
        );
    }
    assert!(np_mean(&[]).is_nan());
}

#[test]
fn hmean_matches_scipy() {
    let cases = cases();
    for c in &cases.hmean {
        assert_eq!(
            hmean(&c.values).to_bits(),
            c.hmean.to_bits(),
            "hmean({:?})",
            c.values
        );
    }
    assert_eq!(hmean(&[0.5, 0.0, 0.9]), 0.0);
    assert!(hmean(&[0.5, -0.1]).is_nan());
    assert!(hmean(&[]).is_nan());
    let mu = &cases.model_utility;
    assert_eq!(hmean(&mu.terms).to_bits(), mu.model_utility.to_bits());
}

#[test]
fn truth_ratio_helpers_match_open_unlearning() {
    const REL: f64 = 1e-15;
    for c in &cases().truth_ratio {
        let n = c.correct_nll.len();
        let mut trs = Vec::with_capacity(n);
        let mut pcs = Vec::with_capacity(n);
        let mut pws = Vec::with_capacity(n);
        let mut mdu = Vec::with_capacity(n);
        for i in 0..n {
            let (cl, pl) = (c.correct_nll[i], &c.perturbed_nll[i]);
            let tr = truth_ratio(cl, pl);
            assert_rel("tr", tr, c.truth_ratio[i], REL);
            assert_rel("tr'", prob_truth_ratio(cl, pl), c.prob_truth_ratio[i], REL);
            assert_rel("p_w", wrong_prob(pl), c.wrong_prob[i], REL);
            let m = mdu_truth_ratio(cl, pl);
            assert_rel("mdu tr", m, c.mdu_truth_ratio[i], REL);
            trs.push(tr);
            pcs.push((-cl).exp());
            pws.push(wrong_prob(pl));
            mdu.push(m);
        }
        for (ours, theirs) in pcs.iter().zip(&c.correct_prob) {
            assert_rel("p_c", *ours, *theirs, REL);
        }
        assert_rel(
            "closer_to_1_better",
            closer_to_1_better(&trs),
            c.closer_to_1_better,
            REL,
        );
        assert_rel("true_better", true_better(&trs), c.true_better, REL);
        assert_rel("prob_mean", prob_mean(&pcs, &pws), c.prob_mean, REL);
        assert_rel("mdu mean", np_mean(&mdu), c.mdu_truth_ratio_mean, REL);
        // Bit for bit when fed numpy's own probabilities.
        let tr_np: Vec<f64> = c.truth_ratio.clone();
        assert_eq!(
            closer_to_1_better(&tr_np).to_bits(),
            c.closer_to_1_better.to_bits()
        );
        assert_eq!(true_better(&tr_np).to_bits(), c.true_better.to_bits());
        assert_eq!(
            prob_mean(&c.correct_prob, &c.wrong_prob).to_bits(),
            c.prob_mean.to_bits()
        );
    }
}

#[test]
fn truth_ratio_hand_values() {
    // Equal losses: tr = p / (p + 1e-10), just below 1; closer_to_1_better ~ 1.
    let tr = truth_ratio(0.5, &[0.5, 0.5]);
    assert!((tr - 1.0).abs() < 1e-9);
    // Only the first three perturbed losses count in the MDU variant.
    assert_eq!(mdu_truth_ratio(1.0, &[1.0, 1.0, 1.0, 50.0]), 1.0);
    assert_eq!(true_better(&[2.0, 0.25]), 0.375);
    assert!(closer_to_1_better(&[f64::NAN]).is_nan());
}
