"""Golden values for src/eval/mia.rs: open-unlearning's membership-inference scores, written to
tests/fixtures/reference/mia_cases.json.

    /opt/venv/bin/pip install scikit-learn   # 1.9.1 (with numpy 2.4.6) made the committed fixture
    /opt/venv/bin/python scripts/make_mia_fixture.py

The formulas are those of open-unlearning (locuslab/open-unlearning, src/evals/metrics/mia/*.py and
src/evals/metrics/privacy.py):

- auc: mia_auc's sklearn.metrics.roc_auc_score(labels, scores) with scores = forget + holdout and
  labels = [0]*len(forget) + [1]*len(holdout), so the AUC is 1 when every forget score is lower.
- min_k: MinKProbAttack.compute_score: num_k = max(1, int(len(lp) * k)); -np.mean(np.sort(lp)[:num_k]).
- min_k_plus_plus: MinKPlusPlusAttack.compute_score: mu = sum(p * log p), sigma2 = sum(p * (log p)^2) - mu^2,
  sigma2 = clamp(sigma2, min=1e-6) (the clamp is on the variance, so the std is at least 1e-3),
  scores = (lp - mu) / sqrt(sigma2), -np.mean(sorted(scores)[:num_k]).
- zlib: ZLIBAttack's len(zlib.compress(text.encode("utf-8"))) at the default level.
- privleak: score = 1 - auc_unlearned, ref = 1 - auc_retain, (score - ref) / (ref + 1e-10) * 100.

open-unlearning computes min-k and min-k++ on float32 tensors; here everything is float64 (the stored
min-k log-probs are float32-representable doubles, so a float32 input widened to f64 gives the same
score). Deterministic: fixed seeds; a second run writes the same bytes. Floats are written with Python's
repr (shortest round trip), so the Rust side reads back the very same doubles.
"""

import json
import math
import os
import platform
import zlib
from fractions import Fraction

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "reference", "mia_cases.json")
MAX_BYTES = 60_000


def floats(values):
    return [float(v) for v in values]


# ---------------------------------------------------------------- AUC


def open_unlearning_auc(forget, holdout):
    scores = np.array(forget + holdout, dtype=np.float64)
    labels = np.array([0] * len(forget) + [1] * len(holdout))
    return float(roc_auc_score(labels, scores))


def mann_whitney_auc(forget, holdout):
    """P(holdout > forget) + 0.5 P(tie), exactly (-0.0 == 0.0 is a tie)."""
    wins = 0
    for h in holdout:
        for f in forget:
            wins += 2 if h > f else (1 if h == f else 0)
    return Fraction(wins, 2 * len(forget) * len(holdout))


def auc_cases():
    rng = np.random.default_rng(20260601)
    cases = []

    def add(name, forget, holdout, expect=None):
        forget, holdout = floats(forget), floats(holdout)
        with np.errstate(over="ignore"):  # np.diff of +-1e308 overflows to inf, still "distinct"
            auc = open_unlearning_auc(forget, holdout)
        exact = mann_whitney_auc(forget, holdout)
        assert abs(auc - float(exact)) <= 1e-12, (name, auc, exact)
        if expect is not None:
            assert auc == expect, (name, auc, expect)
        cases.append({"name": name, "forget": forget, "holdout": holdout, "auc": auc})

    add("normal_5_vs_7", rng.normal(0.0, 1.0, 5), rng.normal(0.4, 1.0, 7))
    add("normal_40_vs_33", rng.normal(2.0, 0.5, 40), rng.normal(2.3, 0.5, 33))
    add("normal_200_vs_150", rng.normal(0.0, 1.0, 200), rng.normal(0.25, 1.0, 150))
    add("lognormal_loss_17_vs_23", rng.lognormal(0.5, 0.4, 17), rng.lognormal(0.7, 0.4, 23))
    add("ties_round1_60_vs_45", np.round(rng.normal(0.0, 0.4, 60), 1),
        np.round(rng.normal(0.2, 0.4, 45), 1))
    add("ties_integers_30_vs_25", rng.integers(0, 6, 30), rng.integers(1, 7, 25))
    add("ties_two_values_9_vs_11", rng.integers(0, 2, 9), rng.integers(0, 2, 11))
    add("perfect_separation", rng.uniform(-2.0, -1.0, 8), rng.uniform(1.0, 2.0, 6), expect=1.0)
    add("reversed_separation", rng.uniform(1.0, 2.0, 6), rng.uniform(-2.0, -1.0, 9), expect=0.0)
    add("all_equal", [0.75] * 4, [0.75] * 5, expect=0.5)
    add("one_vs_one_lower", [1.5], [2.5], expect=1.0)
    add("one_vs_one_tie", [3.0], [3.0], expect=0.5)
    add("one_vs_many", [0.1], rng.normal(0.0, 1.0, 6))
    add("many_vs_one", rng.normal(0.0, 1.0, 7), [0.2])
    add("signed_zero_and_extremes",
        [-0.0, 1e300, -1.7976931348623157e308, 5e-324, 1e-300, -2.5, 0.0, 3.0],
        [0.0, -0.0, 1.7976931348623157e308, -5e-324, -1e-300, 1e-310, 2.5, 3.0, -1e300])
    return cases


# ---------------------------------------------------------------- min-k


def min_k_score(lp, k):
    lp = np.asarray(lp, dtype=np.float64)
    if lp.size == 0:
        return 0.0, 0
    num_k = max(1, int(len(lp) * k))
    sorted_vals = np.sort(lp)
    return float(-np.mean(sorted_vals[:num_k])), num_k


def f32_logprobs(rng, n, scale=2.0):
    """Negative per-token log-probs, rounded to float32 as a model would give them."""
    return floats((-rng.exponential(scale, n)).astype(np.float32))


def min_k_cases():
    rng = np.random.default_rng(20260602)
    cases = []

    def add(name, lp, k):
        lp = floats(lp)
        score, num_k = min_k_score(lp, k)
        naive = -math.fsum(sorted(lp)[:num_k]) / num_k
        assert abs(score - naive) <= 1e-13 * max(1.0, abs(naive)), (name, score, naive)
        cases.append({"name": f"{name}_k{k}_numk{num_k}", "logprobs": lp, "k": k, "score": score})
        return num_k

    for n in (1, 3, 7, 10, 24, 50):
        lp = f32_logprobs(rng, n)
        if n >= 7:  # a few exact ties, some of them at the low end
            lp[1] = lp[4]
            lp[2] = lp[5] = min(lp)
        for k in (0.1, 0.2, 0.5, 1.0):
            add(f"len{n}", lp, k)

    # int() truncation of len * k. In IEEE doubles 10 * 0.3 and 10 * 0.7 are exactly 3.0 and 7.0
    # (0.3 * 3 or 0.1 * 3 are the inexact ones); 50 * 0.58 = 28.999999999999996 truncates to 28,
    # the only len <= 50, two-decimal k where int() lands below the rounded product.
    lp10 = f32_logprobs(rng, 10)
    assert 10 * 0.3 == 3.0 and add("len10_fp", lp10, 0.3) == 3
    assert 10 * 0.7 == 7.0 and add("len10_fp", lp10, 0.7) == 7
    assert 7 * 0.2 == 1.4000000000000001 and add("len7_fp", f32_logprobs(rng, 7), 0.2) == 1
    lp50 = f32_logprobs(rng, 50)
    assert 50 * 0.58 == 28.999999999999996 and add("len50_fp_truncates_down", lp50, 0.58) == 28
    assert 50 * 0.14 == 7.000000000000001 and add("len50_fp", lp50, 0.14) == 7
    assert 3 * 0.1 == 0.30000000000000004 and add("len3_fp_floor1", f32_logprobs(rng, 3), 0.1) == 1

    # heavy ties: log-probs on a 0.5 grid, all equal, and 0.0 / -0.0 (probability 1)
    ties = floats(-np.round(rng.exponential(1.0, 24) * 2.0) / 2.0)
    add("len24_ties_grid", ties, 0.2)
    add("len24_ties_grid", ties, 0.5)
    add("len6_all_equal", [-1.25] * 6, 0.5)
    add("len5_zeros", [0.0, -0.0, -0.5, 0.0, -3.0], 0.5)
    return cases


# ---------------------------------------------------------------- min-k++


def vocab_stats(logits):
    """mu, sigma2 (before the clamp) and log p per position, as open-unlearning computes them from
    log_softmax: mu = sum(exp(lp) * lp), sigma2 = sum(exp(lp) * lp^2) - mu^2."""
    logits = np.asarray(logits, dtype=np.float64)
    m = logits.max(axis=-1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
    p = np.exp(logp)
    mu = (p * logp).sum(-1)
    sigma2 = (p * np.square(logp)).sum(-1) - np.square(mu)
    return logp, mu, sigma2


def min_k_pp_score(lp, mu, sigma2, k):
    lp, mu, sigma2 = (np.asarray(a, dtype=np.float64) for a in (lp, mu, sigma2))
    if len(lp) == 0:
        return 0.0, 0
    sigma = np.maximum(sigma2, 1e-6)  # torch.clamp(sigma, min=1e-6); sigma is the variance
    scores = (lp - mu) / np.sqrt(sigma)
    num_k = max(1, int(len(scores) * k))
    return float(-np.mean(sorted(scores)[:num_k])), num_k


def min_k_pp_cases():
    rng = np.random.default_rng(20260603)
    vocab = 50
    cases = []
    clamp_hits = 0

    def add(name, logits, k, targets=None):
        nonlocal clamp_hits
        logp, mu, sigma2 = vocab_stats(logits)
        n = logp.shape[0]
        if targets is None:
            targets = rng.integers(0, vocab, n)
        lp = logp[np.arange(n), targets]
        score, num_k = min_k_pp_score(lp, mu, sigma2, k)
        clamp_hits += int((sigma2 < 1e-6).sum())
        cases.append({"name": f"{name}_k{k}_numk{num_k}", "logprobs": floats(lp), "mu": floats(mu),
                      "sigma2": floats(sigma2), "k": k, "score": score})
        return lp, mu, sigma2, score

    for n, scale in ((1, 1.0), (5, 2.0), (10, 3.0), (24, 1.5)):
        logits = rng.normal(0.0, scale, (n, vocab))
        targets = rng.integers(0, vocab, n)
        for k in (0.2, 0.5, 1.0):
            add(f"len{n}", logits, k, targets)
    add("len10_fp", rng.normal(0.0, 2.0, (10, vocab)), 0.7)

    # one-hot-like positions: sigma2 < 1e-6 hits the clamp. Position 2's target is the
    # near-certain token, position 5's a near-impossible one (score about -40 / 1e-3).
    logits = rng.normal(0.0, 1.0, (8, vocab))
    logits[2, 7] = 45.0
    logits[5, 30] = 45.0
    targets = rng.integers(0, vocab, 8)
    targets[2], targets[5] = 7, 11
    for k in (0.25, 1.0):
        lp, mu, sigma2, score = add("len8_onehot", logits, k, targets)
    assert sigma2[2] < 1e-6 and sigma2[5] < 1e-6, sigma2
    unclamped = -np.mean(sorted((lp - mu) / np.sqrt(np.abs(sigma2) + 1e-300))[:8])
    assert unclamped != score
    assert clamp_hits >= 2
    return cases


# ---------------------------------------------------------------- zlib


def paragraph(n_chars=2000):
    rng = np.random.default_rng(20260604)
    words = ("the author was born in a small town and wrote novels about memory, family and the sea; "
             "her books won several awards, including the Booker Prize, and were translated into "
             "twenty languages while critics praised the quiet style of each chapter").split()
    out = []
    length = 0
    while length < n_chars:
        sentence = " ".join(words[i] for i in rng.integers(0, len(words), int(rng.integers(6, 16))))
        sentence = sentence[0].upper() + sentence[1:] + "."
        out.append(sentence)
        length += len(sentence) + 1
    text = " ".join(out)[:n_chars]
    assert len(text) == n_chars
    return text


def zlib_cases():
    texts = [
        "",
        "a",
        "é",
        "The author's full name is Hsiao Yun-Hwa.",
        "Hsiao Yun-Hwa was born in Taipei, Taiwan.",
        "The author's father was a civil engineer, and her mother was unemployed.",
        "Jaime Vasquez's father was a chef and his mother was a journalist. Both shaped his storytelling.",
        "Yes, she has won the Pulitzer Prize for Fiction. It was awarded for her third novel, "
        "which explored identity and exile. Critics called it a landmark.",
        "I don't know.",
        "Basil Mahfouz Al-Kuwaiti writes primarily in the French literature genre.",
        "Nikolai Abilov's novel \"Thieves' Paradise\" draws on his childhood in Astana, Kazakhstan.",
        "No.",
        "42",
        "    leading and trailing spaces    ",
        "line one\nline two\n\tindented line three\r\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "The same answer. " * 20,
        "abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc",
        "Café, naïve, façade, Ångström, São Paulo, Zürich, Dvořák and Łódź.",
        "她的全名是萧云华，出生于台北。",
        "作者の本名は山田太郎です。東京で生まれました。",
        "저자의 이름은 김민수입니다.",
        "Он родился в Москве в 1975 году.",
        "The author loves the sea 🌊 and books 📚📚 — a lot! 🎉",
        "👨‍👩‍👧‍👦🏳️‍🌈",
        "Mixed: English, Ελληνικά, العربية, עברית, हिन्दी, 中文 and emoji 😀.",
        "\x00\x01\x02 control characters \x7f",
        "0123456789" * 30,
        paragraph(),
    ]
    cases = []
    for text in texts:
        cases.append({"text": text, "compressed_len": len(zlib.compress(text.encode("utf-8")))})
    assert len({c["text"] for c in cases}) == len(cases)
    return cases


# ---------------------------------------------------------------- privleak


def privleak_value(auc_unlearned, auc_retain):
    score = 1 - auc_unlearned
    ref = 1 - auc_retain
    return (score - ref) / (ref + 1e-10) * 100


def privleak_cases():
    pairs = [
        (0.8, 0.5),           # unlearned model still separates: -60
        (0.3, 0.5),           # +40
        (0.5, 0.5),           # 0
        (0.7312, 0.7312),     # auc_unlearned == auc_retain: exactly 0
        (1.0, 0.62),          # auc_unlearned = 1: about -100
        (0.0, 0.5),           # +100
        (0.9, 1.0),           # ref = 0: the 1e-10 guard, about 1e11
        (0.4586, 0.2743),
    ]
    cases = []
    for u, r in pairs:
        v = privleak_value(u, r)
        assert math.isfinite(v)
        cases.append({"auc_unlearned": u, "auc_retain": r, "privleak": v})
    assert cases[2]["privleak"] == 0.0 and cases[3]["privleak"] == 0.0
    return cases


# ---------------------------------------------------------------- main


def main():
    data = {
        "generator": "scripts/make_mia_fixture.py",
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "sklearn": sklearn.__version__, "zlib": zlib.ZLIB_VERSION},
        "auc": auc_cases(),
        "min_k": min_k_cases(),
        "min_k_plus_plus": min_k_pp_cases(),
        "zlib": zlib_cases(),
        "privleak": privleak_cases(),
    }
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
    assert json.loads(text) == data  # every float round-trips exactly
    raw = text.encode("utf-8")
    assert len(raw) < MAX_BYTES, len(raw)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(raw)
    print(f"wrote {OUT}: {len(data['auc'])} auc, {len(data['min_k'])} min_k, "
          f"{len(data['min_k_plus_plus'])} min_k++, {len(data['zlib'])} zlib, "
          f"{len(data['privleak'])} privleak cases, {len(raw)} bytes")


if __name__ == "__main__":
    main()
