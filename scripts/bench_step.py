#!/usr/bin/env python3
"""PyTorch eager twin of `mdu bench-step`: one MDU unlearning step on a preset LLaDA shape.

    python3 scripts/bench_step.py --preset 1b --device cuda            # bf16 storage on CUDA
    /opt/venv/bin/python scripts/bench_step.py --preset small --device cpu --threads 2

Shapes (src/bench/step.rs StepPreset): 1b = d 2048, 16 layers, 16 heads (MHA), SwiGLU MLP 5504,
vocabulary 126,464; 8b = LLaDA-8B's d 4096, 32 layers, 32 heads, MLP 12,288; small = d 256, 2 layers, 4 heads, MLP 688, the same vocabulary. RoPE theta
500000, RMSNorm eps 1e-5, untied LM head, no biases; mask id = vocab - 1.

Batches: forget and retain, each 4 rows x 256 tokens, positions 64.. of every row are answer. Ids
and the noise come from the same SplitMix64 streams as src/bench/step.rs (ids seeds 1 and 3, noise
seeds 2 and 4; LLaDA weighting 1/t), so both sides mask the same positions (`masked_forget`,
`masked_retain` must agree). Weights: --init splitmix (default) draws them from SplitMix64(0) in
crate::model::init::random_init's order, so the first step's losses match Burn's to round-off;
--init torch uses torch.randn (faster to start for the 1b shape, same distribution).

The step (mdu.md section 3, as src/unlearn/methods/mdu.rs computes it):
  z_c = LM head on the final hidden state at the forget batch's masked answer positions;
  z_u = the frozen starting model's logits at the same positions, with every non-answer position
        (prompt) replaced by the mask id (the anchor pass, no grad);
  target = detach(tau * (z_u - eta * (detach(z_c) - z_u))), tau 0.5, eta 0.1;
  forget = sum_rows KL(softmax(z_c) || softmax(target)) / #masked;
  retain = sum over the retain batch's masked positions of CE / t, divided by its answer positions;
  loss = forget + 1.0 * retain; backward; clip_grad_norm_(1.0); AdamW (lr 1e-5, betas 0.9/0.999,
  eps 1e-8, weight decay 0.01); then torch.cuda.synchronize() before the clock stops.

Precision policy (the same as Burn's `--precision`, src/device.rs): weights and activations stored
in --precision (default bf16 on CUDA, f32 on the CPU); RMSNorm and RoPE computed in f32 and stored
back; logits widened to f32 before log-softmax, the KL and the cross-entropy; AdamW keeps its
moments and computes its update in f32 (AdamWF32 below) and stores the weights back in their type.
Attention is F.scaled_dot_product_attention (bidirectional).

Tokens per step count the trained tokens: forget + retain = 2 x 4 x 256. Prints one JSON line like
`mdu bench-step` (impl "pytorch"), plus torch's own peak-memory counters.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import sys
import time

PROCESS_START = time.perf_counter()  # before torch's import: time to first step counts it, as Burn's counts its start-up

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import SplitMix64, llada_weights, synthetic_noised  # noqa: E402

PRESETS = {
    "1b": dict(d=2048, layers=16, heads=16, mlp=5504, vocab=126464),
    "small": dict(d=256, layers=2, heads=4, mlp=688, vocab=126464),
    "8b": dict(d=4096, layers=32, heads=32, mlp=12288, vocab=126464),
}
THETA, EPS = 500000.0, 1e-5
ROWS, WIDTH, PROMPT = 4, 256, 64
LR, WEIGHT_DECAY, TAU, ETA = 1e-5, 0.01, 0.5, 0.1


def init_weights(cfg: dict, how: str, device: str, dtype: torch.dtype) -> dict:
    """random_init's order: embed; per layer attn norm, q, k, v, o, mlp norm, gate, up, down; final
    norm; head. Norms are ones and draw nothing. N(0, 0.02^2)."""
    d, mlp, vocab = cfg["d"], cfg["mlp"], cfg["vocab"]
    rng = SplitMix64(0)
    gen = torch.Generator(device=device).manual_seed(0)

    def mat(*shape):
        if how == "splitmix":
            v = torch.from_numpy(rng.normal_f32(int(np.prod(shape))).reshape(shape)) * 0.02
            return v.to(device=device, dtype=dtype).requires_grad_(True)
        v = torch.randn(*shape, generator=gen, device=device, dtype=torch.float32) * 0.02
        return v.to(dtype).requires_grad_(True)

    def ones():
        return torch.ones(d, device=device, dtype=dtype, requires_grad=True)

    return llada_weights(d, cfg["layers"], mlp, vocab, mat, ones)


def noised_batch(vocab: int, ids_seed: int, noise_seed: int):
    """src/bench/step.rs step_batches: NoisedBatch::sample (per row one uniform for t, then one per
    answer position, in order)."""
    mask_id = vocab - 1
    ids, masked, t = synthetic_noised(ROWS, WIDTH, PROMPT, vocab, ids_seed, noise_seed)
    answer = WIDTH - PROMPT
    flat = np.flatnonzero(masked)
    noisy = ids.copy()
    noisy[masked] = mask_id
    anchor = noisy.copy()
    anchor[:, :PROMPT] = mask_id  # x_u: everything outside the answer becomes the mask
    return dict(
        noisy=torch.from_numpy(noisy),
        anchor=torch.from_numpy(anchor),
        flat=torch.from_numpy(flat),
        targets=torch.from_numpy(ids.reshape(-1)[flat]),
        weights=torch.from_numpy((1.0 / (t + 1e-6)).astype(np.float32)[flat // WIDTH]),
        answer_positions=ROWS * answer,
    )


def rms_norm(x, weight):
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + EPS)
    return weight * xf.to(x.dtype)


def rope(x, cos, sin):
    xf = x.float()
    half = xf.shape[-1] // 2
    rotated = torch.cat([-xf[..., half:], xf[..., :half]], dim=-1)
    return (xf * cos + rotated * sin).to(x.dtype)


def rope_tables(length: int, head_dim: int, device: str):
    inv_freq = 1.0 / (THETA ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(device), emb.sin().to(device)


def masked_logits(w: dict, cfg: dict, ids: torch.Tensor, flat: torch.Tensor, rope_cs) -> torch.Tensor:
    """f32 logits [N, V] at the flat positions: the LM head runs on those rows only."""
    b, length = ids.shape
    d, heads = cfg["d"], cfg["heads"]
    hd = d // heads
    cos, sin = rope_cs
    x = F.embedding(ids, w["embed"])
    for i in range(cfg["layers"]):
        h = rms_norm(x, w[f"{i}.attn_norm"])
        q, k, v = (
            (h @ w[f"{i}.{n}"].t()).view(b, length, heads, hd).transpose(1, 2) for n in "qkv"
        )
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v)
        x = x + a.transpose(1, 2).reshape(b, length, d) @ w[f"{i}.o"].t()
        h = rms_norm(x, w[f"{i}.mlp_norm"])
        x = x + (F.silu(h @ w[f"{i}.gate"].t()) * (h @ w[f"{i}.up"].t())) @ w[f"{i}.down"].t()
    hidden = rms_norm(x, w["final_norm"]).reshape(b * length, d)[flat]
    return (hidden @ w["head"].t()).float()


class AdamWF32:
    """AdamW with f32 moments and an f32 update, weights stored back in their own type (what
    src/train/mod.rs F32Moments does around Burn's AdamW)."""

    def __init__(self, params, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
        self.params = params
        self.lr, self.wd, self.betas, self.eps, self.t = lr, weight_decay, betas, eps, 0
        self.m = [torch.zeros_like(p, dtype=torch.float32) for p in params]
        self.v = [torch.zeros_like(p, dtype=torch.float32) for p in params]

    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2 = self.betas
        g = [p.grad.float() for p in self.params]
        torch._foreach_lerp_(self.m, g, 1 - b1)
        torch._foreach_mul_(self.v, b2)
        torch._foreach_addcmul_(self.v, g, g, value=1 - b2)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_div_(denom, math.sqrt(1 - b2**self.t))
        torch._foreach_add_(denom, self.eps)
        p32 = [p.float() for p in self.params]
        torch._foreach_mul_(p32, 1 - self.lr * self.wd)
        torch._foreach_addcdiv_(p32, self.m, denom, value=-self.lr / (1 - b1**self.t))
        torch._foreach_copy_(self.params, p32)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="1b")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=("bf16", "f16", "f32"))
    ap.add_argument("--init", choices=("splitmix", "torch"), default="splitmix")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (CPU device only)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()
    if args.iters < 1:
        ap.error("--iters must be at least 1")
    cuda = args.device.startswith("cuda")
    precision = args.precision or ("bf16" if cuda else "f32")
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[precision]
    if not cuda:
        torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset]
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    w = init_weights(cfg, args.init, args.device, dtype)
    params = list(w.values())
    frozen = {k: v.detach().clone() for k, v in w.items()}  # the starting model, no grad
    opt = AdamWF32(params, LR, WEIGHT_DECAY)
    to_dev = lambda b: {k: (v.to(args.device) if torch.is_tensor(v) else v) for k, v in b.items()}  # noqa: E731
    forget = to_dev(noised_batch(cfg["vocab"], 1, 2))
    retain = to_dev(noised_batch(cfg["vocab"], 3, 4))
    rope_cs = rope_tables(WIDTH, cfg["d"] // cfg["heads"], args.device)
    n_forget = forget["flat"].numel()

    times, forget_first, retain_first = [], float("nan"), float("nan")
    for i in range(args.warmup + args.iters):
        sync()
        t0 = time.perf_counter()
        z_c = masked_logits(w, cfg, forget["noisy"], forget["flat"], rope_cs)
        with torch.no_grad():
            z_u = masked_logits(frozen, cfg, forget["anchor"], forget["flat"], rope_cs)
            target = TAU * (z_u - ETA * (z_c.detach() - z_u))
        log_c = F.log_softmax(z_c, dim=-1)
        kl = (log_c.exp() * (log_c - F.log_softmax(target, dim=-1))).sum(-1)
        forget_loss = kl.sum() / max(n_forget, 1)
        z_r = masked_logits(w, cfg, retain["noisy"], retain["flat"], rope_cs)
        ce = F.cross_entropy(z_r, retain["targets"], reduction="none")
        retain_loss = (ce * retain["weights"]).sum() / max(retain["answer_positions"], 1)
        loss = forget_loss + 1.0 * retain_loss
        if i == 0:
            forget_first, retain_first = forget_loss.item(), retain_loss.item()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sync()
        if i == 0:
            first_step_ms = (time.perf_counter() - t0) * 1e3
            first_step_since_start_s = time.perf_counter() - PROCESS_START
        if i >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)

    med = sorted(times)[len(times) // 2]  # upper median, as Burn's
    tokens = 2 * ROWS * WIDTH
    report = {
        "impl": "pytorch",
        "bench": "mdu_step",
        "preset": args.preset,
        "device": args.device,
        "precision": precision,
        "params": sum(p.numel() for p in params),
        "tokens_per_step": tokens,
        "masked_forget": n_forget,
        "masked_retain": int(retain["flat"].numel()),
        "step_ms_median": med,
        "tokens_per_s": tokens / (med / 1e3),
        "iters": len(times),
        "forget_first": forget_first,
        "retain_first": retain_first,
        "step_ms": times,
        "first_step_ms": first_step_ms,
        "first_step_since_start_s": first_step_since_start_s,
        "peak_host_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "init": args.init,
    }
    if cuda:
        report["torch_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        report["torch_max_memory_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    print(json.dumps(report))


if __name__ == "__main__":
    main()
