#!/usr/bin/env python3
"""PyTorch forward-pass benchmark for LLaDA-shaped models built with scripts/mdlm_ref.py.

    /opt/venv/bin/python scripts/bench_forward.py --config tiny --threads 2 --warmup 2 --iters 5

Random-init float32 weights, torch.no_grad(), full forward including the LM head on every position,
no attention mask. Prints one JSON line:
    {"impl":"pytorch","config":..,"threads":..,"tokens_per_s_median":..,"iters":[seconds...]}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdlm_ref  # noqa: E402

CONFIGS = {
    "tiny": dict(d_model=64, n_layers=2, n_heads=4, mlp=128, vocab=256, batch=8, length=64),
    "100m": dict(d_model=768, n_layers=10, n_heads=12, mlp=2048, vocab=16384, batch=4, length=128),
}


def llada_cfg(c: dict) -> dict:
    return {
        "model_type": "llada",
        "d_model": c["d_model"],
        "n_layers": c["n_layers"],
        "n_heads": c["n_heads"],
        "n_kv_heads": c["n_heads"],
        "mlp_hidden_size": c["mlp"],
        "vocab_size": c["vocab"],
        "embedding_size": c["vocab"],
        "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5,
        "max_sequence_length": 4096,
        "weight_tying": False,
    }


def random_weights(cfg: dict, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    D, F, V = cfg["d_model"], cfg["mlp_hidden_size"], cfg["embedding_size"]
    std = 0.02

    def mat(*shape):
        return torch.randn(*shape, generator=g) * std

    top = mdlm_ref.top_names("llada")
    w = {top["embed"]: mat(V, D), top["final_norm"]: torch.ones(D), top["head"]: mat(V, D)}
    for i in range(cfg["n_layers"]):
        n = mdlm_ref.layer_names("llada", i)
        w[n["attn_norm"]] = torch.ones(D)
        w[n["mlp_norm"]] = torch.ones(D)
        for k in ("q", "k", "v", "o"):
            w[n[k]] = mat(D, D)
        w[n["gate"]] = mat(F, D)
        w[n["up"]] = mat(F, D)
        w[n["down"]] = mat(D, F)
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    c = CONFIGS[args.config]
    cfg = llada_cfg(c)
    weights = random_weights(cfg)  # already float32; forward_logits' .to(float32) is then a no-op
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, c["vocab"], (c["batch"], c["length"]), generator=g)
    n_tokens = c["batch"] * c["length"]

    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.iters):
            t0 = time.perf_counter()
            logits = mdlm_ref.forward_logits(weights, cfg, "llada", ids, None)
            _ = float(logits[0, 0, 0])  # make sure the result is materialised
            dt = time.perf_counter() - t0
            if i >= args.warmup:
                times.append(dt)
    assert logits.shape == (c["batch"], c["length"], c["vocab"])
    med = statistics.median(times)
    print(
        json.dumps(
            {
                "impl": "pytorch",
                "config": args.config,
                "threads": args.threads,
                "tokens_per_s_median": n_tokens / med,
                "iters": times,
            }
        )
    )


if __name__ == "__main__":
    main()
