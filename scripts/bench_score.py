"""`mdu score` against Python rouge-score 0.1.2 on the same pairs: speed and identical output.

    /opt/venv/bin/python scripts/bench_score.py bench --mdu target/release/mdu [--n 10000] [--runs 3]
    /opt/venv/bin/python scripts/bench_score.py pairs --world DIR --n N --out FILE
    /opt/venv/bin/python scripts/bench_score.py score --pairs FILE        # the Python reference
    /opt/venv/bin/python scripts/bench_score.py compare A B

`bench` writes a demo world with `mdu demo-world`, builds N (reference, candidate) pairs from its
answers (paraphrases, perturbed answers, and word-level edits of them), then times, end to end as
processes, `mdu score --pairs FILE` and `python bench_score.py score --pairs FILE`, `--runs` times
each (median), checks every run's output numerically identical (every float equal), and prints
the ratio. scripts/bench_score.sh is the wrapper.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

SPLITS = ("forget", "retain", "world_facts", "real_people")


def load_world(world):
    items = []
    for split in SPLITS:
        with open(os.path.join(world, f"{split}.jsonl"), encoding="utf-8") as f:
            items += [json.loads(line) for line in f if line.strip()]
    return items


def edit(rng, text, vocab):
    words = text.split()
    op = rng.randrange(7)
    if op == 0 and len(words) > 1:
        rng.shuffle(words)
    elif op == 1:
        words = [w for w in words if rng.random() > 0.25] or words[:1]
    elif op == 2:
        for _ in range(rng.randint(1, 4)):
            words.insert(rng.randint(0, len(words)), rng.choice(vocab))
    elif op == 3:
        words = [rng.choice(vocab) if rng.random() < 0.3 else w for w in words]
    elif op == 4:
        words = [w.upper() if rng.random() < 0.3 else w for w in words]
    elif op == 5:
        words = words + words[: len(words) // 2]
    else:
        words = words[: max(1, len(words) // 2)]
    return " ".join(words)


def make_pairs(world, n, seed):
    rng = random.Random(seed)
    items = load_world(world)
    vocab = sorted({w for it in items for w in (it["answer"] + " " + it["question"]).split()})
    pairs = []
    while len(pairs) < n:
        it = rng.choice(items)
        ref = it["answer"]
        kind = rng.randrange(6)
        if kind == 0:
            cand = it["paraphrased_answer"]
        elif kind == 1:
            cand = rng.choice(it["perturbed_answer"])
        elif kind == 2:
            cand = edit(rng, ref, vocab)
        elif kind == 3:
            cand = edit(rng, it["paraphrased_answer"], vocab)
        elif kind == 4:
            cand = it["question"] + " " + edit(rng, ref, vocab)
        else:
            cand = rng.choice(items)["answer"]
        pairs.append({"reference": ref, "candidate": cand})
    return pairs


def cmd_pairs(args):
    pairs = make_pairs(args.world, args.n, args.seed)
    with open(args.out, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")


def cmd_score(args):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    with open(args.pairs, encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f]
    t0 = time.perf_counter()
    lines = []
    for p in pairs:
        s = scorer.score(p["reference"], p["candidate"])["rougeL"]
        lines.append(json.dumps({"precision": s.precision, "recall": s.recall,
                                 "fmeasure": s.fmeasure}, separators=(",", ":")))
    dt = time.perf_counter() - t0
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))
    print(f"python scoring loop: {dt:.3f} s", file=sys.stderr)


def parse_scores(text):
    out = []
    for line in text.splitlines():
        d = json.loads(line)
        out.append((float(d["precision"]), float(d["recall"]), float(d["fmeasure"]), sorted(d)))
    return out


def compare(a_text, b_text):
    a, b = parse_scores(a_text), parse_scores(b_text)
    if len(a) != len(b):
        return f"{len(a)} lines vs {len(b)} lines"
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i + 1}: {x} vs {y}"
    return None


def cmd_compare(args):
    with open(args.a) as fa, open(args.b) as fb:
        err = compare(fa.read(), fb.read())
    if err:
        print(f"DIFFERENT: {err}")
        sys.exit(1)
    print("identical")


def timed(cmd, runs):
    times, outputs = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - t0)
        if res.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {res.stderr}")
        outputs.append(res.stdout)
    return times, outputs


def cmd_bench(args):
    mdu = os.path.abspath(args.mdu)
    with tempfile.TemporaryDirectory() as tmp:
        world = os.path.join(tmp, "world")
        subprocess.run([mdu, "demo-world", "--out", world, "--seed", str(args.seed)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pairs_path = os.path.join(tmp, "pairs.jsonl")
        pairs = make_pairs(world, args.n, args.seed)
        with open(pairs_path, "w", encoding="utf-8") as f:
            for p in pairs:
                f.write(json.dumps(p) + "\n")

        py_cmd = [sys.executable, os.path.abspath(__file__), "score", "--pairs", pairs_path]
        rs_cmd = [mdu, "score", "--pairs", pairs_path]
        rs1_cmd = rs_cmd + ["--threads", "1"]
        # Interleave the three kinds run by run, so background load hits them alike.
        py_t, rs_t, rs1_t, py_o, rs_o, rs1_o = [], [], [], [], [], []
        for _ in range(args.runs):
            for cmd, ts, os_ in ((py_cmd, py_t, py_o), (rs_cmd, rs_t, rs_o), (rs1_cmd, rs1_t, rs1_o)):
                t, o = timed(cmd, 1)
                ts += t
                os_ += o
        for name, outs in (("mdu score", rs_o), ("mdu score --threads 1", rs1_o)):
            for o in outs:
                err = compare(py_o[0], o)
                if err:
                    sys.exit(f"{name} differs from rouge-score: {err}")
        for o in py_o[1:]:
            if o != py_o[0]:
                sys.exit("rouge-score output not stable across runs")

    py_s, rs_s, rs1_s = statistics.median(py_t), statistics.median(rs_t), statistics.median(rs1_t)
    cores = os.cpu_count()
    print(f"pairs: {len(pairs)} (demo world seed {args.seed}); outputs identical (every float equal)")
    print(f"python rouge-score 0.1.2: median {py_s:.3f} s  runs {[round(t, 3) for t in py_t]}")
    print(f"mdu score ({cores} cores):    median {rs_s:.3f} s  runs {[round(t, 3) for t in rs_t]}")
    print(f"mdu score --threads 1:    median {rs1_s:.3f} s  runs {[round(t, 3) for t in rs1_t]}")
    print(f"speed-up: {py_s / rs_s:.1f}x (all cores), {py_s / rs1_s:.1f}x (one thread)")
    print(json.dumps({"pairs": len(pairs), "python_s": py_s, "rust_s": rs_s, "rust_1thread_s": rs1_s,
                      "ratio": py_s / rs_s, "ratio_1thread": py_s / rs1_s, "cores": cores,
                      "identical": True}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("--world", required=True)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("score")
    p.add_argument("--pairs", required=True)
    p = sub.add_parser("compare")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("bench")
    p.add_argument("--mdu", default="target/release/mdu")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    {"pairs": cmd_pairs, "score": cmd_score, "compare": cmd_compare, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
