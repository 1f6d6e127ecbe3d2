//! The statistics behind the TOFU / open-unlearning numbers, written to give what scipy 1.17 and
//! numpy 2.x give (`metrics.md` §3–§4):
//!
//! - [`ks_2samp`]: two-sided two-sample Kolmogorov–Smirnov test as `scipy.stats.ks_2samp(a, b)`
//!   (method `auto`): the exact lattice-path p-value when `max(n, m) <= 10000`, Smirnov's
//!   asymptotic `kstwo.sf(D, round(n·m/(n+m)))` above. Forget Quality is its p-value.
//! - [`np_mean`]: `np.mean`, numpy's pairwise summation (the last bits differ from `sum/len`).
//! - [`hmean`]: `scipy.stats.hmean` (Model Utility).
//! - Truth ratio: the per-sample ratio ([`truth_ratio`], [`prob_truth_ratio`], [`mdu_truth_ratio`])
//!   and the open-unlearning aggregators ([`closer_to_1_better`], [`true_better`], [`prob_mean`]).
//!
//! Losses are per-token average negative log-likelihoods of an answer, as open-unlearning's
//! `avg_loss` (or the Eq. 14 estimator under the MDU-paper protocol, `mdu.md` §6.1).

/// Largest sample size for which `method='auto'` takes the exact distribution (scipy 1.17).
pub const KS_MAX_EXACT_N: usize = 10_000;

/// The 1e-10 that open-unlearning adds to denominators.
const TR_EPS: f64 = 1e-10;

/// `scipy.stats.ks_2samp(a, b)`: the statistic and its two-sided p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsResult {
    /// D = sup |F_a − F_b|; on the exact path scipy reports it as `h / lcm(n, m)`.
    pub statistic: f64,
    /// Two-sided p-value in [0, 1]; kept relative-precise down to the smallest doubles.
    pub pvalue: f64,
    /// Whether the p-value came from the exact distribution (false: asymptotic).
    pub exact: bool,
}

/// `scipy.stats.ks_2samp(a, b).pvalue` (two-sided, method `auto`). `None` for an empty sample.
pub fn ks_2samp_pvalue(a: &[f64], b: &[f64]) -> Option<f64> {
    ks_2samp(a, b).map(|r| r.pvalue)
}

/// `scipy.stats.ks_2samp(a, b)` (two-sided, method `auto`). `None` for an empty sample; any NaN
/// gives NaN for both numbers (scipy's `nan_policy='propagate'`).
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Option<KsResult> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.iter().chain(b).any(|x| x.is_nan()) {
        return Some(KsResult {
            statistic: f64::NAN,
            pvalue: f64::NAN,
            exact: false,
        });
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    // No NaN left; -0.0 and 0.0 compare equal, as in np.sort / np.searchsorted.
    a.sort_by(|x, y| x.partial_cmp(y).unwrap());
    b.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let (n1, n2) = (a.len(), b.len());
    let d = ecdf_max_difference(&a, &b);

    let g = gcd(n1 as u64, n2 as u64);
    if n1.max(n2) <= KS_MAX_EXACT_N {
        let lcm = (n1 as u64 / g) * n2 as u64;
        let h = (d * lcm as f64).round_ties_even() as u64;
        let d_exact = h as f64 / lcm as f64;
        if h == 0 {
            return Some(KsResult {
                statistic: d_exact,
                pvalue: 1.0,
                exact: true,
            });
        }
        let prob = if n1 == n2 {
            prob_outside_square(n1 as u64, h)
        } else {
            outer_prob_inside_method(n1 as u64, n2 as u64, g, h)
        };
        if (0.0..=1.0).contains(&prob) {
            return Some(KsResult {
                statistic: d_exact,
                pvalue: prob,
                exact: true,
            });
        }
        // scipy falls back to the asymptotic formula (with the rounded D) when the exact
        // computation leaves [0, 1]; it does not happen for n <= 10000 but is kept for parity.
        return Some(asymptotic(n1, n2, d_exact));
    }
    Some(asymptotic(n1, n2, d))
}

fn asymptotic(n1: usize, n2: usize, d: f64) -> KsResult {
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = m * n / (m + n);
    let p = kstwo_sf(d, en.round_ties_even());
    KsResult {
        statistic: d,
        pvalue: p.clamp(0.0, 1.0),
        exact: false,
    }
}

/// max over the pooled sample of |ECDF_a − ECDF_b| exactly as scipy forms it: counts divided by
/// the sample sizes in f64, then `max(max(cdf1 − cdf2), clip(−min(cdf1 − cdf2), 0, 1))`.
fn ecdf_max_difference(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut max_s = f64::NEG_INFINITY;
    let mut min_s = f64::INFINITY;
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => {
                if x <= y {
                    x
                } else {
                    y
                }
            }
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max_s = max_s.max(diff);
        min_s = min_s.min(diff);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    if min_s > max_s {
        min_s
    } else {
        max_s
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// scipy `_compute_prob_outside_square(n, h)`: P(D_{n,n} >= h/n) by the alternating reflection
/// series, each term divided by binom(2n, n) and nested Horner-like so that nothing cancels:
/// `P = 2·A0·(1 − A1·(1 − A2·(1 − …)))`.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0f64;
    let mut k = (n as f64 / h as f64).floor() as i64;
    while k >= 0 {
        let mut p1 = 1.0f64;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// scipy `_compute_outer_prob_inside_method(m, n, g, h)` (`_stats_pythran.py`): the proportion
/// of lattice paths from (0,0) to (m,n) that leave the band |x/m − y/n| < h/lcm(m,n), by
/// Hodges' inside method rewritten to carry 1 − p (Viehmann 2021), so small p-values keep
/// their relative precision.
fn outer_prob_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize).skip(minj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((((ng * i - h) as f64) / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = ((((ng * i + h) as f64) / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            val = (a[(jj + minj - lastminj) as usize] * i as f64 + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            // numpy slice assignment: clipped at the end of the array.
            let start = ((maxj - minj) as usize).min(len_a);
            let end = (start + (lastlen - curlen) as usize).min(len_a);
            for v in &mut a[start..end] {
                *v = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

// ---------------------------------------------------------------------------------------------
// Asymptotic branch: scipy.stats.kstwo.sf (scipy/stats/_ksstats.py, Simard & L'Ecuyer 2011).

const E128: i32 = 128;
const EP128: f64 = 3.402_823_669_209_385e38; // 2^128
const EM128: f64 = 2.938_735_877_055_719e-39; // 2^-128
const MIN_LOG: f64 = -708.0;
const PI: f64 = std::f64::consts::PI;

/// `scipy.stats.kstwo.sf(x, n)`: P(D_n > x) for the two-sided one-sample KS statistic; `n` is a
/// whole number >= 1 held as f64, as ks_2samp passes `np.round(en)`.
pub fn kstwo_sf(x: f64, n: f64) -> f64 {
    if x.is_nan() || n.is_nan() || n < 1.0 || n.fract() != 0.0 {
        return f64::NAN;
    }
    // rv_continuous.sf: outside the support (0.5/n, 1) the answer is 1 below, 0 above.
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.5 / n {
        return 1.0;
    }
    kolmogn_sf(n as u64, x)
}

/// `_kolmogn(n, x, cdf=False)`.
fn kolmogn_sf(n: u64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: 1/2n <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            let mut p = 1.0;
            for i in 1..=n {
                p *= i as f64 * (1.0 / nf) * (2.0 * t - 1.0);
            }
            p
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip01(1.0 - prob);
    }
    if t >= nf - 1.0 {
        return clip01(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        return clip01(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return clip01(1.0 - kolmogn_dmtw_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip01(1.0 - kolmogn_pomeranz_cdf(n, x));
        }
        return clip01(2.0 * smirnov_sf(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip01(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw_cdf(n, x)
    } else {
        kolmogn_pelz_good_cdf(n, x)
    };
    clip01(1.0 - cdf)
}

fn clip01(p: f64) -> f64 {
    if p.is_nan() {
        p
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// log(n!/n^n) by Stirling's series with the n·log(n) removed up front.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    const STIRLING: [f64; 8] = [
        -2.955_065_359_477_124e-2,
        6.410_256_410_256_41e-3,
        -1.917_526_917_526_917_5e-3,
        8.417_508_417_508_417e-4,
        -5.952_380_952_380_952e-4,
        7.936_507_936_507_937e-4,
        -2.777_777_777_777_778e-3,
        8.333_333_333_333_333e-2,
    ];
    let rn = 1.0 / n;
    let x = rn / n;
    let mut poly = STIRLING[0];
    for c in &STIRLING[1..] {
        poly = poly * x + c;
    }
    n.ln() / 2.0 - n + (2.0 * PI).ln() / 2.0 + rn * poly
}

/// x · 2^e without intermediate overflow or underflow (C `ldexp`).
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
        if x.is_infinite() {
            return x;
        }
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
        if x == 0.0 {
            return x;
        }
    }
    x * 2f64.powi(e as i32)
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..m {
                c[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    c
}

/// `_kolmogn_DMTW`: Durbin's matrix method as Marsaglia–Tsang–Wang evaluate it; returns the CDF.
fn kolmogn_dmtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;

    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for (r, wv) in (i - 1..m).zip(&w[..m - i + 1]) {
            hm[r * m + i] = *wv;
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }

    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut hexpnt: i64 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > EP128 {
            for x in hm.iter_mut() {
                *x /= EP128;
            }
            hexpnt += E128 as i64;
        }
        nn /= 2;
    }
    let mut p = hpwr[(k - 1) * m + (k - 1)];
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128 as i64;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    p.clamp(0.0, 1.0)
}

fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1) / 2, (i + 1) % 2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `_kolmogn_Pomeranz`: Pomeranz's recursion (n <= 140); returns the CDF.
fn kolmogn_pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let n = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![0.0; npwrs];
    let mut twogpower = vec![0.0; npwrs];
    let mut onem2gpower = vec![0.0; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let mut expnt: i64 = 0;
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) =
        (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_over_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s): (i64, i64) = (0, 0);
    let (mut j1, mut _j2) = pomeranz_j1j2(0, n, ll, ceilf, roundf);
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.iter_mut().for_each(|x| *x = 0.0);
        let (nj1, nj2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        j1 = nj1;
        _j2 = nj2;
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = nj2 - k1 + 1;
        if ln2 > 0 {
            let ln2 = ln2 as usize;
            let start = (k1 - v0s) as usize;
            // numpy slices clip at the end of the array.
            let src: Vec<f64> = v0[start.min(npwrs)..(start + ln2).min(npwrs)].to_vec();
            let ker = &pwrs[..ln2.min(npwrs)];
            let conv_start = (nj1 - k1) as usize;
            let conv_len = (nj2 - nj1 + 1).max(0) as usize;
            for (out, idx) in (conv_start..conv_start + conv_len).enumerate() {
                // full convolution: conv[idx] = sum_i src[i] * ker[idx - i]
                let mut s = 0.0;
                let lo = idx.saturating_sub(ker.len() - 1);
                let hi = idx.min(src.len().saturating_sub(1));
                if !src.is_empty() && lo <= hi {
                    for ii in lo..=hi {
                        s += src[ii] * ker[idx - ii];
                    }
                }
                v1[out] = s;
            }
            let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < vmax && vmax < EM128 {
                v1.iter_mut().for_each(|x| *x *= EP128);
                expnt -= E128 as i64;
            }
            v1s = v0s + nj1 - k1;
        }
    }
    let mut ans = v1[(n - v1s) as usize];
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += E128 as i64;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    ans.clamp(0.0, 1.0)
}

/// `_kolmogn_PelzGood`: the Pelz–Good approximation of the CDF.
fn kolmogn_pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let pi2 = PI * PI;
    let pi4 = PI.powi(4);
    let pi6 = PI.powi(6);
    let sqrt2pi = (2.0 * PI).sqrt();
    let z = nf.sqrt() * x;
    let zsquared = z.powf(2.0);
    let zthree = z.powf(3.0);
    let zfour = z.powf(4.0);
    let zsix = z.powf(6.0);
    let qlog = -pi2 / 8.0 / zsquared;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -zsquared;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi4 * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi2 * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);

    let mut kk = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (msq, mfour, msix) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msq,
            k2a + k2b * msq + k2c * mfour,
            k3a + k3b * msq + k3c * mfour + k3d * msix,
        ];
        for (kv, c) in kk.iter_mut().zip(coeffs) {
            *kv = *kv * qpower + c;
        }
    }
    let div = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (kv, dv) in kk.iter_mut().zip(div) {
        *kv = *kv * q * sqrt2pi / dv;
    }
    let q = (-pi2 / 2.0 / zsquared).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut t2 = Vec::with_capacity(maxk.max(0) as usize);
    let mut t3 = Vec::with_capacity(maxk.max(0) as usize);
    for k in (1..=maxk).rev() {
        let ksq = (k * k) as f64;
        let qp = q.powf(ksq);
        let kspi = PI * k as f64;
        t2.push(ksq * qp);
        t3.push((sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp);
    }
    let k2extra = pairwise_sum(&t2) * (pi2 * sqrt2pi / (-36.0 * zthree));
    kk[2] += k2extra;
    let k3extra = pairwise_sum(&t3) * (pi2 * sqrt2pi / (216.0 * zsix));
    kk[3] += k3extra;
    for (i, kv) in kk.iter_mut().enumerate() {
        *kv /= nf.powf(i as f64 / 2.0);
    }
    0.0 + kk[0] + kk[1] + kk[2] + kk[3]
}

/// `smirnov(n, x)`: the one-sided survival function P(D_n^+ >= x), Birnbaum–Tingey's lower sum
/// (as xsf's `_smirnov`, which scipy calls for the two-sided tail). xsf carries double-double
/// arithmetic; this sums in f64 with each term formed in log space, good to ~1e-12 relative.
fn smirnov_sf(n: u64, x: f64) -> f64 {
    if !(0.0..=1.0).contains(&x) || n == 0 {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let n = n as i64;
    // floor(n·x) and its remainder, exactly (n·x = p + err with err from an FMA).
    let p = nf * x;
    let err = nf.mul_add(x, -p);
    let mut nxfl = p.floor();
    let mut alpha = (p - nxfl) + err;
    if alpha < 0.0 {
        nxfl -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        nxfl += 1.0;
        alpha = 0.0;
    }
    let nxfl = nxfl as i64;
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        // x <= 1/n
        let t = (1.0 + x).powf((n - 1) as f64);
        return 1.0 - x * t;
    }
    const MINLOG: f64 = -7.083_964_185_322_641e2;
    if -2.0 * nf * x * x < MINLOG {
        return 0.0;
    }
    if nxfl >= n - 1 {
        return (1.0 - x).powf(nf);
    }
    if n > 1_000_000 {
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 - (-logp.exp_m1())
        };
    }
    let mut n1mxfl = n - nxfl - i64::from(alpha != 0.0);
    if alpha == 0.0 {
        n1mxfl -= 1;
    }
    let n_terms = n1mxfl + 1;
    // A_v = C(n,v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1), v = 0..n_terms-1; sf = x · Σ A_v.
    // Sum with Neumaier compensation; terms are positive.
    let mut sum = 0.0f64;
    let mut comp = 0.0f64;
    // ln C(n, v), accumulated as a compensated pair: it grows to ~v·ln(n/v), and a plain f64
    // running sum would lose ~1e-9 of relative precision in the terms by v ~ 1e4.
    let (mut ln_c, mut ln_c_lo) = (0.0f64, 0.0f64);
    let vmid = n / 2;
    for v in 0..n_terms {
        if v > 0 {
            let inc = ((n - v + 1) as f64 / v as f64).ln();
            // Knuth's TwoSum: s + err == ln_c + inc exactly.
            let s = ln_c + inc;
            let bb = s - ln_c;
            ln_c_lo += (ln_c - (s - bb)) + (inc - bb);
            ln_c = s;
        }
        // 1 - x - v/n = (n - v - nxfl - alpha)/n ; x + v/n = (v + nxfl + alpha)/n
        let t2x = ((n - v - nxfl) as f64 - alpha) / nf;
        let t1x = ((v + nxfl) as f64 + alpha) / nf;
        let term = if v == 0 {
            (nf * t2x.ln()).exp() / x
        } else {
            let big = ln_c + (n - v) as f64 * t2x.ln();
            ((big + (v - 1) as f64 * t1x.ln()) + ln_c_lo).exp()
        };
        let s = sum + term;
        if sum.abs() >= term.abs() {
            comp += (sum - s) + term;
        } else {
            comp += (term - s) + sum;
        }
        sum = s;
        if term != 0.0 {
            if 4.0 * (n_terms - v) as f64 * term < f64::EPSILON * (sum + comp) && v != n_terms - 1 {
                break;
            }
        } else if v > vmid {
            break;
        }
    }
    x * (sum + comp)
}

// ---------------------------------------------------------------------------------------------
// Means.

/// numpy's pairwise summation of a contiguous float64 array (`np.sum` / `np.add.reduce`).
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (k, rk) in r.iter_mut().enumerate() {
                *rk += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[whole..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.mean(a)` for a 1-D float64 array: pairwise sum / n, bit for bit. NaN for an empty slice.
pub fn np_mean(a: &[f64]) -> f64 {
    if a.is_empty() {
        return f64::NAN;
    }
    pairwise_sum(a) / a.len() as f64
}

/// Python's `sum(a) / len(a)`: left-to-right, the mean `eval_rwku_dream.py` uses.
pub fn naive_mean(a: &[f64]) -> f64 {
    if a.is_empty() {
        return f64::NAN;
    }
    a.iter().fold(0.0, |s, x| s + x) / a.len() as f64
}

/// `scipy.stats.hmean(a)` = `1 / np.mean(1 / a)`: 0 when any value is 0, NaN when any is negative
/// or the slice is empty (scipy warns and returns NaN in both cases).
pub fn hmean(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|&v| v < 0.0) {
        return f64::NAN;
    }
    let recip: Vec<f64> = values.iter().map(|&v| 1.0 / v).collect();
    1.0 / np_mean(&recip)
}

// ---------------------------------------------------------------------------------------------
// Truth ratio (metrics.md §4.2).

/// `np.minimum` / `np.maximum` propagate NaN; `f64::min` / `f64::max` do not.
fn np_minimum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if b < a {
        b
    } else {
        a
    }
}

fn np_maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if b > a {
        b
    } else {
        a
    }
}

/// Probability of a wrong answer set: `exp(−mean_k L_k)`, the geometric mean of the perturbed
/// answers' per-token probabilities (open-unlearning averages the losses first).
pub fn wrong_prob(perturbed_nlls: &[f64]) -> f64 {
    (-np_mean(perturbed_nlls)).exp()
}

/// open-unlearning / TOFU per-sample truth ratio:
/// `tr = exp(−mean(L_perturbed)) / (exp(−L_correct) + 1e-10)` (wrong over correct).
/// `correct_nll` is the per-token loss of the paraphrased answer (forget/retain) or of the answer
/// (real authors / world facts); `perturbed_nlls` the per-token losses of the perturbed answers.
pub fn truth_ratio(correct_nll: f64, perturbed_nlls: &[f64]) -> f64 {
    wrong_prob(perturbed_nlls) / ((-correct_nll).exp() + TR_EPS)
}

/// OpenUnlearning's per-sample "extent of knowledge" ratio used by the `prob_mean` aggregator:
/// `p_c / (p_c + p_w + 1e-10)`, `p_c = exp(−L_correct)`, `p_w = exp(−mean(L_perturbed))`.
pub fn prob_truth_ratio(correct_nll: f64, perturbed_nlls: &[f64]) -> f64 {
    let pc = (-correct_nll).exp();
    let pw = wrong_prob(perturbed_nlls);
    pc / (pc + pw + TR_EPS)
}

/// MDU-paper protocol truth ratio (`--truth_ratio` in `eval_tofu_*.py`):
/// `exp(gt_loss − mean(perturbed_losses[:3]))`, Eq. 14 losses, original answer as "correct".
/// Fewer than 3 perturbed losses: the mean of those given. Aggregate with a raw [`np_mean`].
pub fn mdu_truth_ratio(gt_nll: f64, perturbed_nlls: &[f64]) -> f64 {
    let k = perturbed_nlls.len().min(3);
    (gt_nll - np_mean(&perturbed_nlls[..k])).exp()
}

/// `closer_to_1_better` (forget_truth_ratio): `np.mean(np.minimum(tr, 1/(tr + 1e-10)))`.
pub fn closer_to_1_better(truth_ratios: &[f64]) -> f64 {
    let v: Vec<f64> = truth_ratios
        .iter()
        .map(|&tr| np_minimum(tr, 1.0 / (tr + TR_EPS)))
        .collect();
    np_mean(&v)
}

/// `true_better` (retain / real authors / world facts inside Model Utility):
/// `np.mean(np.maximum(0, 1 − tr))`.
pub fn true_better(truth_ratios: &[f64]) -> f64 {
    let v: Vec<f64> = truth_ratios
        .iter()
        .map(|&tr| np_maximum(0.0, 1.0 - tr))
        .collect();
    np_mean(&v)
}

/// `prob_mean` (OpenUnlearning, after issue #160): `np.mean(p_c / (p_c + p_w + 1e-10))` over
/// samples, from each sample's correct-answer probability `p_c = exp(−L_correct)` and wrong-answer
/// probability `p_w = exp(−mean(L_perturbed))` ([`wrong_prob`]). Panics if the lengths differ.
pub fn prob_mean(correct_probs: &[f64], wrong_probs: &[f64]) -> f64 {
    assert_eq!(
        correct_probs.len(),
        wrong_probs.len(),
        "prob_mean: one wrong-answer probability per correct-answer probability"
    );
    let v: Vec<f64> = correct_probs
        .iter()
        .zip(wrong_probs)
        .map(|(&pc, &pw)| pc / (pc + pw + TR_EPS))
        .collect();
    np_mean(&v)
}
