"""Golden values for src/eval/stats.rs: scipy.stats.ks_2samp / kstwo.sf / hmean, np.mean and the
open-unlearning truth-ratio aggregators, written to tests/fixtures/reference/stats_cases.json.

    /opt/venv/bin/pip install scipy        # 1.17.1 used for the committed fixture
    /opt/venv/bin/python scripts/make_stats_fixture.py

Deterministic: fixed seeds; a second run writes the same bytes. Floats are written with
Python's repr (shortest round trip), so the Rust side reads back the very same doubles.

Large samples are not stored: a sample may be a generator {"gen": "lcg", "n", "mul", "add",
"modulus", "scale", "offset"} whose i-th value is float((i*mul + add) % modulus) * scale + offset:
an integer conversion, one IEEE multiplication and one addition, the same double in Python and
Rust.
"""

import json
import math
import os
import warnings

import numpy as np
import scipy
import scipy.stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "reference", "stats_cases.json")


def lcg(n, mul, add, modulus, scale, offset=0.0):
    spec = {"gen": "lcg", "n": n, "mul": mul, "add": add, "modulus": modulus, "scale": scale,
            "offset": offset}
    values = [float((i * mul + add) % modulus) * scale + offset for i in range(n)]
    return spec, values


def explicit(values):
    values = [float(v) for v in values]
    return values, values


def ks_cases():
    rng = np.random.default_rng(20260521)
    cases = []

    def add(name, a, b):
        a_spec, a_vals = a
        b_spec, b_vals = b
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = scipy.stats.ks_2samp(np.array(a_vals), np.array(b_vals))
        # scipy warns when the exact computation fails (e.g. a rounding excursion above 1)
        # and it switches to the asymptotic formula.
        fell_back = any("Exact calculation unsuccessful" in str(w.message) for w in caught)
        n1, n2 = len(a_vals), len(b_vals)
        cases.append({
            "name": name,
            "a": a_spec,
            "b": b_spec,
            "statistic": float(res.statistic),
            "pvalue": float(res.pvalue),
            "exact": max(n1, n2) <= 10000 and not fell_back,
        })

    def lognormal(n, mu=0.0, sigma=1.0):
        return explicit(rng.lognormal(mu, sigma, n))

    # Equal sizes: exact via _compute_prob_outside_square.
    for n in (5, 20, 64, 400):
        add(f"equal_{n}_same_law", lognormal(n), lognormal(n))
        add(f"equal_{n}_shifted", lognormal(n), lognormal(n, 0.7))
    # Unequal sizes: exact via _compute_outer_prob_inside_method.
    for n1, n2 in ((7, 11), (64, 100), (30, 400), (1, 2), (3, 300), (100, 64)):
        add(f"unequal_{n1}_{n2}_same_law", lognormal(n1), lognormal(n2))
        add(f"unequal_{n1}_{n2}_shifted", lognormal(n1), lognormal(n2, 0.9))
    # Ties inside and across samples.
    add("ties_equal_50", explicit(rng.integers(0, 5, 50)), explicit(rng.integers(0, 5, 50)))
    add("ties_unequal_40_70", explicit(rng.integers(0, 4, 40)), explicit(rng.integers(1, 5, 70)))
    add("ties_all_equal_values", explicit([2.0] * 9), explicit([2.0] * 13))
    add("signed_zeros", explicit([-0.0, 0.0, 1.0, -1.0]), explicit([0.0, 0.0, 2.0]))
    # Identical samples: D = 0, p = 1.
    same = lognormal(120)
    add("identical_120", same, same)
    add("identical_5", explicit([1, 2, 3, 4, 5]), explicit([5, 4, 3, 2, 1]))
    # Fully separated: the smallest p-values, relative precision must survive.
    # 1000 vs 1000 underflows to exactly 0 in scipy too; 500 vs 500 is about 7e-300.
    for n1, n2 in ((400, 400), (64, 100), (30, 400), (500, 500), (1000, 1000), (300, 301),
                   (450, 460), (5, 5), (1, 9)):
        a = lcg(n1, 7919, 3, 10007, 1e-4)
        b = lcg(n2, 811, 5, 9973, 1e-4, 2.0)
        add(f"separated_{n1}_{n2}", a, b)
        add(f"separated_{n2}_{n1}_reversed", b, a)
    # Nearly separated (one overlap), TOFU forget10 size 400.
    a = sorted(rng.uniform(0, 1, 400))
    b = list(rng.uniform(1.5, 2, 399)) + [a[-5] - 1e-9]
    add("nearly_separated_400", explicit(a), explicit(b))
    # Truth-ratio-like samples (forget10 vs retain model), like Forget Quality.
    add("tofu_like_400_400", lognormal(400, -0.5, 0.6), lognormal(400, -0.3, 0.5))
    add("tofu_like_200_400", lognormal(200, -0.5, 0.6), lognormal(400, -0.45, 0.6))
    # Large exact cases (the 'auto' threshold is max(n1, n2) <= 10000).
    # This one: the exact sum rounds to 1.0000000000000009, scipy falls back to kstwo.
    add("exact_fallback_10000_10000", lcg(10000, 7919, 13, 10007, 0.5),
        lcg(10000, 104729, 7, 10009, 0.5))
    add("exact_10000_10000_shifted", lcg(10000, 7919, 13, 10007, 0.5),
        lcg(10000, 104729, 7, 10009, 0.51))
    add("exact_9999_10000", lcg(9999, 7919, 3, 10007, 0.25), lcg(10000, 6007, 11, 10037, 0.25))
    add("exact_10000_37", lcg(10000, 7919, 3, 10007, 1.0), lcg(37, 811, 5, 9973, 1.0))
    # Asymptotic: kstwo.sf(D, round(n1*n2/(n1+n2))).
    add("asymp_10001_500", lcg(10001, 7919, 3, 10007, 1.0), lcg(500, 811, 5, 9973, 1.0))
    add("asymp_20000_15000", lcg(20000, 7919, 3, 20011, 1.0), lcg(15000, 6007, 17, 20021, 1.0))
    add("asymp_12000_30_shifted", lcg(12000, 7919, 3, 10007, 1.0), lcg(30, 811, 5, 9973, 2.0))
    add("asymp_11000_11000_separated", lcg(11000, 7919, 3, 10007, 1.0),
        lcg(11000, 811, 5, 9973, -1.0))
    add("asymp_15000_1", lcg(15000, 7919, 3, 10007, 1.0), explicit([5000.5]))
    return cases


def kstwo_cases():
    """kstwo.sf(x, n) over every branch of scipy's _kolmogn (sf side)."""
    cases = []
    ns = [1, 2, 3, 5, 10, 50, 140, 141, 500, 5000, 100000, 100001, 2000000]
    for n in ns:
        xs = set()
        for x in (0.5 / n, 0.75 / n, 1.0 / n, 1.5 / n, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.45,
                  0.5, 0.6, 0.9, 1.0 - 1.0 / n, 1.0 - 0.5 / n, 1.0):
            xs.add(x)
        for c in (0.3, 0.6, 0.8, 0.86, 1.0, 1.3, 1.5, 1.9, 2.0, 3.0, 5.0, 8.0, 12.0, 19.0):
            xs.add(c / math.sqrt(n))  # n*x^2 = c^2
        for x in sorted(xs):
            if not (0.0 <= x <= 1.0):
                continue
            cases.append({"n": n, "x": x, "sf": float(scipy.stats.kstwo.sf(x, n))})
    return cases


def mean_cases():
    rng = np.random.default_rng(7)
    cases = []
    for n in (1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 255, 256, 1000, 2100):
        a = rng.random(n) * rng.choice([1.0, 1e3, 1e-3])
        cases.append({"values": [float(x) for x in a], "np_mean": float(np.mean(a)),
                      "naive_mean": sum(float(x) for x in a) / n})
    return cases


def hmean_cases():
    rng = np.random.default_rng(11)
    cases = []
    for values in ([1.0, 4.0], [1, 2, 3, 4, 5, 6, 7], [0.5, 0.0, 0.9], [0.3] * 9,
                   [0.25, 0.5, 0.75, 1.0, 0.125, 0.9, 0.33, 0.66, 0.99],
                   list(rng.random(9)), list(rng.random(100)), [1e-300, 1.0], [2.0]):
        values = [float(v) for v in values]
        cases.append({"values": values, "hmean": float(scipy.stats.hmean(values))})
    return cases


def truth_ratio_cases():
    """open-unlearning truth_ratio() on arrays, exactly as memorization.py computes it."""
    rng = np.random.default_rng(5)
    cases = []
    for n, k in ((1, 5), (9, 5), (40, 5), (200, 5), (130, 3), (17, 1)):
        correct = rng.gamma(2.0, 0.6, n)
        wrong = rng.gamma(2.0, 0.8, (n, k))
        wrong[0] = correct[0]  # a ratio of exactly ~1
        correct_prob = np.exp(-correct)
        wrong_prob = np.exp(-np.mean(wrong, axis=1))
        tr = wrong_prob / (correct_prob + 1e-10)
        tr_prob = correct_prob / (correct_prob + wrong_prob + 1e-10)
        # MDU-paper variant: exp(gt_loss - mean(perturbed_losses[:3])), raw mean.
        mdu_tr = np.array([np.exp(c - np.mean(w[:3])) for c, w in zip(correct, wrong)])
        cases.append({
            "correct_nll": [float(x) for x in correct],
            "perturbed_nll": [[float(x) for x in row] for row in wrong],
            "truth_ratio": [float(x) for x in tr],
            "prob_truth_ratio": [float(x) for x in tr_prob],
            "correct_prob": [float(x) for x in correct_prob],
            "wrong_prob": [float(x) for x in wrong_prob],
            "closer_to_1_better": float(np.mean(np.minimum(tr, 1 / (tr + 1e-10)))),
            "true_better": float(np.mean(np.maximum(0, 1 - tr))),
            "prob_mean": float(np.mean(tr_prob)),
            "mdu_truth_ratio": [float(x) for x in mdu_tr],
            "mdu_truth_ratio_mean": float(np.mean(mdu_tr)),
        })
    return cases


def model_utility_case():
    """hmean of the nine TOFU Model Utility terms."""
    terms = [0.91, 0.87, 0.61, 0.45, 0.93, 0.58, 0.47, 0.89, 0.57]
    return {"terms": terms, "model_utility": float(scipy.stats.hmean(terms))}


def main():
    data = {
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "ks": ks_cases(),
        "kstwo": kstwo_cases(),
        "mean": mean_cases(),
        "hmean": hmean_cases(),
        "truth_ratio": truth_ratio_cases(),
        "model_utility": model_utility_case(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    tiny = min(c["pvalue"] for c in data["ks"])
    print(f"wrote {OUT}: {len(data['ks'])} KS cases (smallest p {tiny:.3e}), "
          f"{len(data['kstwo'])} kstwo.sf points, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
