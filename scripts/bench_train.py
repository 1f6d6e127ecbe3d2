#!/usr/bin/env python3
"""PyTorch twin of `mdu bench-train`: one MDLM SFT training step on the demo model's shape.

    /opt/venv/bin/python scripts/bench_train.py --threads 2 --warmup 2 --iters 5

Model: LLaDA architecture (mdlm_ref.py's building blocks), d_model 128, 4 layers, 4 heads (MHA),
SwiGLU MLP 512, vocab 2048, RoPE theta 10000, no weight tying, float32. Batch: 32 rows x 72 tokens,
positions 26.. of each row are answer (maskable). Weights, token ids and the noised batch are drawn
from the same SplitMix64 streams as src/bench.rs (seeds 0, 1, 2), so the first-step loss must match
Burn's `loss_first` to float32 round-off.

One step, as `mdu finetune` takes it: forward to the final hidden state, LM head only on the masked
rows, loss = sum over masked positions of CE * 1/(t+1e-6), divided by the number of maskable
positions; `loss.item()`; backward; clip_grad_norm_(1.0); AdamW (lr 1e-3, betas 0.9/0.999,
eps 1e-8, weight decay 0). The noised batch is sampled once and reused every step (as the Rust side).
Each phase is timed too (forward with the loss read, backward, clip, AdamW), as on the Rust side.

--attention sdpa (default) uses F.scaled_dot_product_attention; --attention explicit uses
softmax(q k^T / sqrt(hd)) v as mdlm_ref.forward_logits does. Prints one JSON line:
    {"impl":"pytorch","bench":"train","device":"cpu","params",..,"tokens_per_step",..,
     "masked_per_step",..,"step_ms_median",..,"tokens_per_s",..,"iters",..,"loss_first",..,
     "step_ms":[..],"phase_ms_median":{"forward","backward","clip","adamw"},"threads",..,"attention",..,"torch",..}
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mdlm_ref import apply_rope, linear, rms_norm, rope_cos_sin  # noqa: E402

D, LAYERS, HEADS, MLP, VOCAB, THETA, EPS = 128, 4, 4, 512, 2048, 10000.0, 1e-5
ROWS, WIDTH, PROMPT = 32, 72, 26
SEED_WEIGHTS, SEED_IDS, SEED_NOISE = 0, 1, 2
LR, TIME_EPSILON = 1e-3, 1e-3
MASK_ID = VOCAB - 1


class SplitMix64:
    """src/rng.rs, vectorised: output k of SplitMix64(seed) only depends on seed + (k+1)*gamma."""

    GAMMA = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, seed: int):
        self.seed = np.uint64(seed)
        self.count = 0

    def next_u64(self, n: int) -> np.ndarray:
        k = np.arange(self.count + 1, self.count + n + 1, dtype=np.uint64)
        self.count += n
        z = self.seed + k * self.GAMMA  # uint64 arrays wrap silently
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    def uniform(self, n: int) -> np.ndarray:
        return (self.next_u64(n) >> np.uint64(11)).astype(np.float64) / float(1 << 53)

    def normal_f32(self, n: int) -> np.ndarray:
        """Box-Muller with the cosine only, two uniforms per sample (u1 first), cast to f32."""
        u = self.uniform(2 * n)
        u1 = np.maximum(u[0::2], np.finfo(np.float64).tiny)
        u2 = u[1::2]
        return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)).astype(np.float32)


def init_weights() -> dict:
    """crate::model::init::random_init order: embed; per layer q, k, v, o, gate, up, down (norms are
    ones and draw nothing); final norm; LM head. N(0, 0.02^2), HF [out, in] layout."""
    rng = SplitMix64(SEED_WEIGHTS)

    def mat(*shape):
        v = rng.normal_f32(int(np.prod(shape))) * np.float32(0.02)
        return torch.from_numpy(v.reshape(shape)).requires_grad_(True)

    return llada_weights(D, LAYERS, MLP, VOCAB, mat, lambda: torch.ones(D, requires_grad=True))


def llada_weights(d: int, layers: int, mlp: int, vocab: int, mat, ones) -> dict:
    """The weights in random_init's draw order, from `mat(*shape)` (a drawn matrix) and `ones()`
    (a norm, which draws nothing). Also used by bench_step.py."""
    w = {"embed": mat(vocab, d)}
    for i in range(layers):
        w[f"{i}.attn_norm"] = ones()
        for k in ("q", "k", "v", "o"):
            w[f"{i}.{k}"] = mat(d, d)
        w[f"{i}.mlp_norm"] = ones()
        w[f"{i}.gate"] = mat(mlp, d)
        w[f"{i}.up"] = mat(mlp, d)
        w[f"{i}.down"] = mat(d, mlp)
    w["final_norm"] = ones()
    w["head"] = mat(vocab, d)
    return w


def synthetic_noised(rows: int, width: int, prompt: int, vocab: int, ids_seed: int, noise_seed: int):
    """src/bench/mod.rs synthetic_noised_batch: ids uniform below vocab - 2 from SplitMix64(ids_seed),
    positions prompt.. answer; NoisedBatch::sample (InverseTime): per row one uniform for t, then one
    per answer position, in order. Returns (ids, masked [rows, width] bool, t [rows]). Also used by
    bench_step.py."""
    ids = (SplitMix64(ids_seed).next_u64(rows * width) % np.uint64(vocab - 2)).astype(np.int64)
    ids = ids.reshape(rows, width)
    answer = width - prompt
    u = SplitMix64(noise_seed).uniform(rows * (1 + answer)).reshape(rows, 1 + answer)
    t = TIME_EPSILON + (1.0 - TIME_EPSILON) * u[:, 0]
    masked = np.zeros((rows, width), dtype=bool)
    masked[:, prompt:] = u[:, 1:] < t[:, None]
    return ids, masked, t


def noised_batch():
    """src/bench/mod.rs train_bench_batch + NoisedBatch::sample (InverseTime)."""
    ids, masked, t = synthetic_noised(ROWS, WIDTH, PROMPT, VOCAB, SEED_IDS, SEED_NOISE)
    answer = WIDTH - PROMPT
    flat = np.flatnonzero(masked)  # row-major, as NoisedBatch.masked
    targets = ids.reshape(-1)[flat]
    weights = (1.0 / (t + 1e-6)).astype(np.float32)[flat // WIDTH]
    noisy = ids.copy()
    noisy[masked] = MASK_ID
    return (
        torch.from_numpy(noisy),
        torch.from_numpy(flat),
        torch.from_numpy(targets),
        torch.from_numpy(weights),
        ROWS * answer,
    )


def forward_hidden(w: dict, ids: torch.Tensor, sdpa: bool) -> torch.Tensor:
    B, L = ids.shape
    hd = D // HEADS
    x = F.embedding(ids, w["embed"])
    cos, sin = rope_cos_sin(L, hd, THETA)
    for i in range(LAYERS):
        h = rms_norm(x, w[f"{i}.attn_norm"], EPS)
        q, k, v = (linear(h, w[f"{i}.{n}"]).view(B, L, HEADS, hd).transpose(1, 2) for n in "qkv")
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if sdpa:
            a = F.scaled_dot_product_attention(q, k, v)  # bidirectional, scale 1/sqrt(hd)
        else:
            a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd), dim=-1) @ v
        x = x + linear(a.transpose(1, 2).reshape(B, L, D), w[f"{i}.o"])
        h = rms_norm(x, w[f"{i}.mlp_norm"], EPS)
        x = x + linear(F.silu(linear(h, w[f"{i}.gate"])) * linear(h, w[f"{i}.up"]), w[f"{i}.down"])
    return rms_norm(x, w["final_norm"], EPS)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--attention", choices=("sdpa", "explicit"), default="sdpa")
    args = ap.parse_args()
    if args.iters < 1:
        ap.error("--iters must be at least 1")

    torch.set_num_threads(args.threads)
    w = init_weights()
    params = list(w.values())
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    noisy, flat, targets, weights, maskable = noised_batch()
    sdpa = args.attention == "sdpa"

    times, phases, loss_first = [], [[], [], [], []], float("nan")
    for i in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        hidden = forward_hidden(w, noisy, sdpa)
        logits = linear(hidden.reshape(ROWS * WIDTH, D)[flat], w["head"])  # masked rows only
        ce = F.cross_entropy(logits, targets, reduction="none")
        loss = (ce * weights).sum() / max(maskable, 1)
        value = loss.item()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if i == 0:
            loss_first = value
        if i >= args.warmup:
            times.append((t4 - t0) * 1e3)
            for k, dt in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k].append(dt * 1e3)

    # Burn takes the upper median (sorted[n/2]); the same here, so even counts compare alike.
    def median(v):
        return sorted(v)[len(v) // 2]

    med = median(times)
    tokens = ROWS * WIDTH
    print(
        json.dumps(
            {
                "impl": "pytorch",
                "bench": "train",
                "device": "cpu",
                "params": sum(p.numel() for p in params),
                "tokens_per_step": tokens,
                "masked_per_step": int(flat.numel()),
                "step_ms_median": med,
                "tokens_per_s": tokens / (med / 1e3),
                "iters": len(times),
                "loss_first": loss_first,
                "step_ms": times,
                "phase_ms_median": dict(zip(("forward", "backward", "clip", "adamw"), map(median, phases))),
                "threads": args.threads,
                "attention": args.attention,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
