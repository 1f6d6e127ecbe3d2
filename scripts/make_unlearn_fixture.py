"""PyTorch reference for the unlearning objectives (MDU, GA, GradDiff, NPO) on the tiny fixtures.

What it computes, all in float32 with autograd on leaf weight tensors (mdlm_ref.forward_logits, no
attention mask, Dream logits right-shifted `cat(z[:, :1], z[:, :-1])` in every pass):

* MDLM NLL, dllm "token" normalisation (mdlm.md §2.3, mdu.md §3.4):
  NLL = Σ_masked CE·w / max(1, Σ answer positions); per-sequence nll_r = Σ_{masked in row r} CE·w.
  w: LLaDA 1/(t + 1e-6); Dream CART with p = 0.3 (mdlm.md §3.7), computed exactly as the Rust
  `LossWeighting::Cart::weights` does: over the whole row of the batch width, "unmasked" = every
  position that is not masked (prompt and padding included), in f64, then cast to f32.
* ga:       L = −NLL(forget)                                                  (mdu.md §8)
* graddiff: L = γ·(−NLL(forget)) + α·NLL(retain), γ = α = 1                  (mdu.md §8)
* npo:      L = γ·mean_r[−(2/β)·logσ(β·(nll_r(θ) − nll_r(θ0)))] + α·NLL(retain), β = 0.1 (mdu.md §8)
* mdu:      L = Σ_{masked i} KL_i / #masked + α·NLL(retain)                  (mdu.md §3.2-3.4)
  with x_u = where(answer, x_c, mask), target = detach(τ·(z_u − η·(z_c − z_u))), z_u from θ0 on x_u,
  KL forward / reverse / js with nan_to_num on each log-ratio, optional special ids at −inf in both.

θ is the fixture checkpoint (`tests/fixtures/llada_f32`, `tests/fixtures/dream_gqa`); θ0 is a perturbed
copy written by this script (`*_ref`: the same files, weights + N(0, 0.02²) noise, seeded).

Writes
  tests/fixtures/llada_f32_ref/, tests/fixtures/dream_gqa_ref/     (frozen reference models)
  tests/fixtures/reference/unlearn_objectives.json                  (batches, losses, gradients)

The JSON holds the clean ids, answer flags, times and mask flags of every batch (so nothing random has
to be reproduced), the loss and its parts of every case, and for every weight (HF names) the L2 norm,
plain sum of its gradient, plus the first 8 gradient values (row-major, HF [out, in] layout) of the
first layer's query projection and of the LM head. Norms and sums are accumulated in float64 from the
float32 gradients; numbers are written with 9 significant digits (exact for float32 values).
"weights" per batch are the f32 loss weights (0 where not masked), for debugging only. Each case also
has "f64": loss, parts and gradient norms / head values from a float64 run of the same computation
(same f32 weights, batches and loss weights), i.e. the exact values the f32 ones approximate; the
script asserts every f32 number is within 8e-6 of them (loss and parts relative, gradient norms
relative, gradient entries relative to their tensor's gradient norm). The worst values (up to 4.7e-6)
are the small, cancellation-dominated gradients of dream_gqa's k_proj.bias; LLaDA stays under 2e-6.

Self-checks (assert): at τ = 0 the MDU target is uniform (forward KL = Σ p log p + log V per position);
graddiff = ga's forget part + the retain NLL; autograd = central finite differences in float64 (on a
float64 copy of the weights, with a float64 forward checked against mdlm_ref) for mdu and npo cases
on both models, and the float32 gradients agree with the float64 ones there.

    /opt/venv/bin/python scripts/make_unlearn_fixture.py

Deterministic (fixed seeds, one torch thread): a second run writes the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdlm_ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT_JSON = os.path.join(FIX, "reference", "unlearn_objectives.json")

MODELS = {"llada_f32": "llada", "dream_gqa": "dream"}
WIDTH = 14
MAX_ID = 280  # batch ids are drawn from [0, MAX_ID), away from every special id
NOISE_STD = 0.02
CART_P = 0.3
BATCHES = {
    "forget": dict(prompt=(5, 6, 4), answer=(6, 5, 7), t=(0.3, 0.55, 0.8)),
    "retain": dict(prompt=(4, 6, 5), answer=(7, 4, 6), t=(0.2, 0.65, 0.9)),
}
# Batch seeds. dream_gqa's: its forget and retain NLLs must not nearly cancel in graddiff (seed 2001 gave
# −2.23 + 2.33 = 0.10, which turns f32 rounding into 3e-6 relative error on the loss).
BATCH_SEEDS = {"llada_f32": 2000, "dream_gqa": 2007}
REF_SEEDS = {"llada_f32": 1000, "dream_gqa": 1001}
DEFAULTS = dict(tau=0.0, eta=0.0, kl="forward", alpha=1.0, beta=0.1, gamma=1.0, exclude_special=False)
HEAD_N = 8


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------

def special_ids(folder: str, cfg: dict, arch: str) -> list[int]:
    """mask, eos, pad, end-of-turn and BOS ids, as the Rust `SpecialTokens::all()` collects them:
    config ids where given, the tokenizer's eot token and its bos_token (falling back to config)."""
    with open(os.path.join(folder, "tokenizer_config.json")) as f:
        tc = json.load(f)
    by_text = {v["content"]: int(k) for k, v in tc.get("added_tokens_decoder", {}).items()}
    eot_text = "<|eot_id|>" if arch == "llada" else "<|im_end|>"
    eos = cfg["eos_token_id"]
    ids = {cfg["mask_token_id"], eos, cfg.get("pad_token_id", eos)}
    if eot_text in by_text:
        ids.add(by_text[eot_text])
    bos = by_text.get(tc.get("bos_token"), cfg.get("bos_token_id"))
    if bos is not None:
        ids.add(bos)
    return sorted(ids)


def write_reference(name: str, seed: int) -> None:
    """tests/fixtures/NAME_ref: NAME's files, weights + N(0, NOISE_STD²) per element, float32."""
    src, dst = os.path.join(FIX, name), os.path.join(FIX, name + "_ref")
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    for fn in sorted(os.listdir(src)):
        if not fn.endswith(".safetensors") and fn != "model.safetensors.index.json":
            shutil.copyfile(os.path.join(src, fn), os.path.join(dst, fn))
    _, w = mdlm_ref.load_checkpoint(src)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k in sorted(w):
        v = w[k].to(torch.float32)
        out[k] = (v + torch.randn(v.shape, generator=g, dtype=torch.float32) * NOISE_STD).contiguous()
    save_file(out, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})


def load(folder: str, grad: bool, dtype=torch.float32) -> tuple[dict, dict]:
    cfg, w = mdlm_ref.load_checkpoint(os.path.join(FIX, folder))
    return cfg, {k: v.to(dtype).detach().clone().requires_grad_(grad) for k, v in w.items()}


def forward_any(weights: dict, cfg: dict, arch: str, ids: torch.Tensor, attention_mask=None) -> torch.Tensor:
    """mdlm_ref.forward_logits in the weights' own dtype (float64 for the finite-difference check);
    same formulas, no attention mask."""
    assert attention_mask is None
    d = mdlm_ref.model_dims(cfg, arch)
    H, KV, hd, eps = d["n_heads"], d["n_kv_heads"], d["head_dim"], d["eps"]
    top = mdlm_ref.top_names(arch)
    dt = weights[top["embed"]].dtype
    w = lambda n: None if n is None else weights[n]  # noqa: E731

    def rms(x, g):
        return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    B, L = ids.shape
    x = F.embedding(ids, w(top["embed"]))
    inv = 1.0 / (float(d["theta"]) ** (torch.arange(0, hd, 2, dtype=dt) / hd))
    fr = torch.outer(torch.arange(L, dtype=dt), inv)
    emb = torch.cat([fr, fr], -1)
    cos, sin = emb.cos(), emb.sin()
    for i in range(d["n_layers"]):
        n = mdlm_ref.layer_names(arch, i)
        h = rms(x, w(n["attn_norm"]))
        q = mdlm_ref.linear(h, w(n["q"]), w(n["q_bias"])).view(B, L, H, hd).transpose(1, 2)
        k = mdlm_ref.linear(h, w(n["k"]), w(n["k_bias"])).view(B, L, KV, hd).transpose(1, 2)
        v = mdlm_ref.linear(h, w(n["v"]), w(n["v_bias"])).view(B, L, KV, hd).transpose(1, 2)
        q = q * cos + mdlm_ref.rotate_half(q) * sin
        k = k * cos + mdlm_ref.rotate_half(k) * sin
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd), -1) @ v
        x = x + mdlm_ref.linear(a.transpose(1, 2).reshape(B, L, H * hd), w(n["o"]))
        h = rms(x, w(n["mlp_norm"]))
        x = x + mdlm_ref.linear(F.silu(mdlm_ref.linear(h, w(n["gate"]))) * mdlm_ref.linear(h, w(n["up"])), w(n["down"]))
    return mdlm_ref.linear(rms(x, w(top["final_norm"])), w(top["head"]))


# ----------------------------------------------------------------------------------------------
# batches
# ----------------------------------------------------------------------------------------------

def cart_weights_row(masked_row: list[bool], p: float) -> list[float]:
    """Rust LossWeighting::Cart::weights: w_i = Σ_{j unmasked, j≠i} 0.5·p·(1−p)^{|i−j|−1} in f64 over
    the whole row, then cast to f32 (0 where not masked)."""
    n = len(masked_row)
    out = []
    for i in range(n):
        if not masked_row[i]:
            out.append(0.0)
            continue
        s = 0.0
        for j in range(n):
            if j != i and not masked_row[j]:
                s += 0.5 * p * (1.0 - p) ** (abs(i - j) - 1)
        out.append(s)
    return out


def make_batch(g: torch.Generator, spec: dict, eos: int, specials: list[int], arch: str) -> dict:
    ids, answer, masked, weights = [], [], [], []
    for plen, alen, t in zip(spec["prompt"], spec["answer"], spec["t"]):
        assert plen + alen <= WIDTH
        p = torch.randint(0, MAX_ID, (plen,), generator=g).tolist()
        a = torch.randint(0, MAX_ID, (alen - 1,), generator=g).tolist() + [eos]
        row = p + a + [eos] * (WIDTH - plen - alen)
        assert not set(p + a[:-1]) & set(specials)
        ans = [plen <= i < plen + alen for i in range(WIDTH)]
        while True:  # Bernoulli(t) on the answer; at least one masked and one unmasked answer position
            draw = (torch.rand(alen, generator=g) < t).tolist()
            if 1 <= sum(draw) <= alen - 1:
                break
        m = [False] * plen + draw + [False] * (WIDTH - plen - alen)
        if arch == "llada":
            w = [1.0 / (t + 1e-6) if mi else 0.0 for mi in m]
        else:
            w = cart_weights_row(m, CART_P)
        ids.append(row)
        answer.append(ans)
        masked.append(m)
        weights.append([float(torch.tensor(x, dtype=torch.float32)) for x in w])
    return dict(ids=ids, answer=answer, t=list(spec["t"]), masked=masked, weights=weights)


class Tensors:
    """A JSON batch as tensors."""

    def __init__(self, b: dict, mask_id: int, dtype):
        self.ids = torch.tensor(b["ids"], dtype=torch.long)
        self.answer = torch.tensor(b["answer"], dtype=torch.bool)
        self.masked = torch.tensor(b["masked"], dtype=torch.bool)
        self.w = torch.tensor(b["weights"], dtype=torch.float32).to(dtype)  # f32 values, as Rust
        self.x_c = torch.where(self.masked, torch.full_like(self.ids, mask_id), self.ids)
        self.x_u = torch.where(self.answer, self.x_c, torch.full_like(self.ids, mask_id))
        assert bool((self.masked <= self.answer).all())


# ----------------------------------------------------------------------------------------------
# objectives
# ----------------------------------------------------------------------------------------------

class Ctx:
    def __init__(self, arch, cfg, theta, theta0, mask_id, specials, fwd, dtype):
        self.arch, self.cfg, self.theta, self.theta0 = arch, cfg, theta, theta0
        self.mask_id, self.specials, self.fwd, self.dtype = mask_id, specials, fwd, dtype

    def logits(self, weights, ids):
        z = self.fwd(weights, self.cfg, self.arch, ids, None).to(self.dtype)
        if self.arch == "dream":
            z = torch.cat([z[:, :1], z[:, :-1]], dim=1)
        return z


def weighted_ce(ctx: Ctx, weights, b: Tensors) -> torch.Tensor:
    """[R, W]: CE·w at masked positions, 0 elsewhere."""
    z = ctx.logits(weights, b.x_c)
    ce = -torch.log_softmax(z, -1).gather(-1, b.ids[..., None])[..., 0]
    return torch.where(b.masked, ce * b.w, torch.zeros_like(ce))


def nll(ctx: Ctx, weights, b: Tensors) -> torch.Tensor:
    return weighted_ce(ctx, weights, b).sum() / max(1, int(b.answer.sum()))


def seq_nll(ctx: Ctx, weights, b: Tensors) -> torch.Tensor:
    return weighted_ce(ctx, weights, b).sum(1)


def nan0(x):
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def mdu_forget(ctx: Ctx, b: Tensors, p: dict, check_uniform: bool = False) -> torch.Tensor:
    z_c = ctx.logits(ctx.theta, b.x_c)
    with torch.no_grad():
        z_u = ctx.logits(ctx.theta0, b.x_u)
    target = (p["tau"] * (z_u - p["eta"] * (z_c - z_u))).detach()
    zc, zt = z_c[b.masked], target[b.masked]  # [N, V]
    if p["exclude_special"]:
        sp = torch.zeros(zc.shape[-1], dtype=torch.bool)
        sp[ctx.specials] = True
        zc = zc.masked_fill(sp, -math.inf)
        zt = zt.masked_fill(sp, -math.inf)
    lc, lt = torch.log_softmax(zc, -1), torch.log_softmax(zt, -1)
    pc, pt = lc.exp(), lt.exp()
    if p["kl"] == "forward":
        kl = (pc * nan0(lc - lt)).sum(-1)
    elif p["kl"] == "reverse":
        kl = (pt * nan0(lt - lc)).sum(-1)
    elif p["kl"] == "js":
        lm = torch.log(torch.clamp_min((pc + pt) / 2, 1e-12))
        kl = 0.5 * ((pc * nan0(lc - lm)).sum(-1) + (pt * nan0(lt - lm)).sum(-1))
    else:
        raise ValueError(p["kl"])
    if check_uniform:
        assert p["tau"] == 0 and p["kl"] == "forward" and not p["exclude_special"]
        V = zc.shape[-1]
        assert bool((lt - (-math.log(V))).abs().max() < 1e-5), "tau = 0 target is not uniform"
        want = (pc * lc).sum(-1) + math.log(V)
        assert torch.allclose(kl, want, rtol=1e-5, atol=1e-6), (kl, want)
    return kl.sum() / int(b.masked.sum())


def objective(ctx: Ctx, method: str, p: dict, forget: Tensors, retain: Tensors, check_uniform=False):
    """Returns (total loss, {part: value})."""
    if method == "ga":
        f = -nll(ctx, ctx.theta, forget)
        return f, {"forget": f}
    if method == "graddiff":
        f, r = -nll(ctx, ctx.theta, forget), nll(ctx, ctx.theta, retain)
        return p["gamma"] * f + p["alpha"] * r, {"forget": f, "retain": r}
    if method == "npo":
        cur = seq_nll(ctx, ctx.theta, forget)
        with torch.no_grad():
            ref = seq_nll(ctx, ctx.theta0, forget)
        f = (-(2.0 / p["beta"]) * F.logsigmoid(p["beta"] * (cur - ref))).mean()
        r = nll(ctx, ctx.theta, retain)
        return p["gamma"] * f + p["alpha"] * r, {"forget": f, "retain": r}
    if method == "mdu":
        f = mdu_forget(ctx, forget, p, check_uniform)
        r = nll(ctx, ctx.theta, retain)
        return f + p["alpha"] * r, {"forget": f, "retain": r}
    raise ValueError(method)


def grads(weights: dict, loss: torch.Tensor) -> dict:
    for v in weights.values():
        v.grad = None
    loss.backward()
    return {k: (v.grad if v.grad is not None else torch.zeros_like(v)).detach() for k, v in weights.items()}


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------

def case_list() -> list[dict]:
    cases = []

    def add(model, method, **kw):
        p = dict(DEFAULTS, **kw)
        if method == "mdu":
            name = f"{model}/mdu tau={p['tau']:g} eta={p['eta']:g} kl={p['kl']}"
            if p["exclude_special"]:
                name += " exclude_special"
        else:
            name = f"{model}/{method}"
        cases.append(dict(name=name, model=model, method=method, params=p))

    for tau in (0.0, 0.5, 1.0):
        for eta in (0.0, 1.0):
            for kl in ("forward", "reverse", "js"):
                add("llada_f32", "mdu", tau=tau, eta=eta, kl=kl)
    add("llada_f32", "mdu", tau=0.5, eta=1.0, kl="forward", exclude_special=True)
    add("llada_f32", "mdu", tau=1.0, eta=0.0, kl="js", exclude_special=True)
    for m in ("ga", "graddiff", "npo"):
        add("llada_f32", m)
    for kl in ("forward", "reverse", "js"):
        add("dream_gqa", "mdu", tau=0.5, eta=1.0, kl=kl)
    add("dream_gqa", "mdu", tau=0.0, kl="forward")
    add("dream_gqa", "mdu", tau=1.0, eta=0.0, kl="forward", exclude_special=True)
    for m in ("ga", "graddiff", "npo"):
        add("dream_gqa", m)
    return cases


# Cases checked against finite differences: η = 0, so the detached MDU target does not depend on θ and
# the loss is the function autograd differentiates.
FD_CASES = [
    "llada_f32/mdu tau=0.5 eta=0 kl=forward",
    "llada_f32/npo",
    "dream_gqa/mdu tau=1 eta=0 kl=forward exclude_special",
    "dream_gqa/npo",
]


def fd_scalars(arch: str, cfg: dict, forget: dict) -> list[tuple[str, int]]:
    """A query-projection entry, an LM-head entry, an MLP-norm entry, and two embedding entries: the row
    of the first prompt token of the forget batch and the row of the EOS / padding id (zero in dream_gqa)."""
    n0, top = mdlm_ref.layer_names(arch, 0), mdlm_ref.top_names(arch)
    d = mdlm_ref.model_dims(cfg, arch)["d_model"]
    tok, eos = forget["ids"][0][0], cfg["eos_token_id"]
    return [(n0["q"], 5), (top["head"], 7 * d + 3), (n0["mlp_norm"], 2), (top["embed"], tok * d + 3),
            (top["embed"], eos * d + 1)]


def fd_check(case, ctx: Ctx, t64: dict, f32_grads: dict, forget_json: dict) -> None:
    """Autograd vs central differences on the float64 copy; f32 autograd vs f64 autograd."""
    th = ctx.theta
    fo, re_ = t64["forget"], t64["retain"]
    loss, _ = objective(ctx, case["method"], case["params"], fo, re_)
    g64 = grads(th, loss)
    h = 1e-7
    for name, idx in fd_scalars(ctx.arch, ctx.cfg, forget_json):
        flat = th[name].data.view(-1)
        x0 = flat[idx].item()
        with torch.no_grad():
            flat[idx] = x0 + h
            lp = objective(ctx, case["method"], case["params"], fo, re_)[0].item()
            flat[idx] = x0 - h
            lm = objective(ctx, case["method"], case["params"], fo, re_)[0].item()
            flat[idx] = x0
        fd = (lp - lm) / (2 * h)
        ag = g64[name].view(-1)[idx].item()
        assert abs(fd - ag) <= 1e-6 * max(1.0, abs(ag)), f"{case['name']} {name}[{idx}]: fd {fd} autograd {ag}"
        g32 = f32_grads[name].view(-1)[idx].item()
        scale = g64[name].norm().item()
        assert abs(g32 - ag) <= 1e-4 * max(scale, 1e-12), f"{case['name']} {name}[{idx}]: f32 {g32} f64 {ag}"
        log(f"  fd {case['name']:<53} {name}[{idx}]: autograd {ag:+.8e} fd {fd:+.8e} f32 {g32:+.8e}")


def summarise(arch: str, loss: torch.Tensor, parts: dict, g: dict, sums: bool = True) -> dict:
    """loss, parts and gradient statistics, as float64 numbers (norms and sums accumulated in f64)."""
    n0, top = mdlm_ref.layer_names(arch, 0), mdlm_ref.top_names(arch)
    norms = {k: g[k].double().norm().item() for k in sorted(g)}
    rec = dict(loss=loss.item(), parts={k: v.item() for k, v in parts.items()})
    rec["global_grad_norm"] = math.sqrt(sum(x * x for x in norms.values()))
    rec["grad_norm"] = norms
    if sums:
        rec["grad_sum"] = {k: g[k].double().sum().item() for k in sorted(g)}
    rec["grad_head"] = {k: [float(x) for x in g[k].reshape(-1)[:HEAD_N].tolist()] for k in (n0["q"], top["head"])}
    return rec


def f64_agreement(case, ctx: Ctx, t64: dict, loss32: float, parts32: dict, g32: dict) -> tuple[dict, dict]:
    """The same case in float64 (float64 forward, same f32 weights, batches and loss weights), and how
    far the float32 results are from it: the headroom the 1e-5 comparison on the Rust side has.
    Relative errors of loss / parts, of each tensor's gradient norm, and the largest gradient entry
    error relative to its tensor's gradient norm."""
    loss, parts = objective(ctx, case["method"], case["params"], t64["forget"], t64["retain"])
    g64 = grads(ctx.theta, loss)
    rel = lambda a, b: abs(a - b) / max(abs(b), 1e-30)  # noqa: E731
    vals = [rel(loss32, loss.item())] + [rel(parts32[k], v.item()) for k, v in parts.items()]
    norms, entries = [], []
    for k, g in g64.items():
        n = g.norm().item()
        if n == 0:
            assert g32[k].abs().max().item() == 0
            continue
        norms.append(rel(g32[k].double().norm().item(), n))
        entries.append((g32[k].double() - g).abs().max().item() / n)
    agree = dict(value=max(vals), norm=max(norms), entry=max(entries))
    return agree, summarise(ctx.arch, loss, parts, g64, sums=False)


def to_json(x, ind: int = 0) -> str:
    """json.dumps(indent=1) with lists of scalars kept on one line."""
    pad, inner = " " * ind, " " * (ind + 1)
    if isinstance(x, dict):
        if not x:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {to_json(v, ind + 1)}" for k, v in x.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(x, list) and any(isinstance(v, (dict, list)) for v in x):
        return "[\n" + ",\n".join(inner + to_json(v, ind + 1) for v in x) + "\n" + pad + "]"
    if isinstance(x, list):
        return "[" + ", ".join(to_json(v) for v in x) + "]"
    if isinstance(x, float):
        return repr(float(f"{x:.9g}"))  # 9 significant digits: exact for f32 values, 5e-10 otherwise
    return json.dumps(x)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    out = {"generator": "scripts/make_unlearn_fixture.py", "models": {}, "cases": []}
    ctxs, tensors, ctx64, t64 = {}, {}, {}, {}
    for folder, arch in MODELS.items():
        write_reference(folder, seed=REF_SEEDS[folder])
        cfg, theta = load(folder, True)
        cfg0, theta0 = load(folder + "_ref", False)
        assert cfg0 == cfg and set(theta0) == set(theta)
        assert mdlm_ref.arch_of(cfg) == arch and cfg["vocab_size"] == 296
        mask_id, eos = cfg["mask_token_id"], cfg["eos_token_id"]
        specials = special_ids(os.path.join(FIX, folder), cfg, arch)
        assert min(specials) >= MAX_ID
        g = torch.Generator().manual_seed(BATCH_SEEDS[folder])
        batches = {name: make_batch(g, spec, eos, specials, arch) for name, spec in BATCHES.items()}
        out["models"][folder] = dict(reference=folder + "_ref", mask_id=mask_id, special_ids=specials, batches=batches)
        ctxs[folder] = Ctx(arch, cfg, theta, theta0, mask_id, specials, mdlm_ref.forward_logits, torch.float32)
        tensors[folder] = {n: Tensors(b, mask_id, torch.float32) for n, b in batches.items()}
        _, th64 = load(folder, True, torch.float64)
        _, th064 = load(folder + "_ref", False, torch.float64)
        ctx64[folder] = Ctx(arch, cfg, th64, th064, mask_id, specials, forward_any, torch.float64)
        t64[folder] = {n: Tensors(b, mask_id, torch.float64) for n, b in batches.items()}
        # the forward used for the float64 runs agrees with mdlm_ref's
        with torch.no_grad():
            ids = tensors[folder]["forget"].x_c
            a = mdlm_ref.forward_logits(theta, cfg, arch, ids)
            b32 = forward_any(theta, cfg, arch, ids)
            b64 = forward_any({n: v.double() for n, v in theta.items()}, cfg, arch, ids)
        assert (a - b32).abs().max() < 1e-5 and (a.double() - b64).abs().max() < 1e-4
        log(f"{folder}: mask {mask_id} eos {eos} specials {specials}; "
            f"masked forget {int(tensors[folder]['forget'].masked.sum())} retain {int(tensors[folder]['retain'].masked.sum())}")

    results, worst = {}, {}
    for case in case_list():
        folder = case["model"]
        ctx, tb = ctxs[folder], tensors[folder]
        p = case["params"]
        check_uniform = case["method"] == "mdu" and p["tau"] == 0 and p["kl"] == "forward" and not p["exclude_special"]
        loss, parts = objective(ctx, case["method"], p, tb["forget"], tb["retain"], check_uniform)
        g = grads(ctx.theta, loss)
        assert math.isfinite(loss.item()) and all(bool(torch.isfinite(v).all()) for v in g.values()), case["name"]
        rec = dict(case)
        rec["params"] = dict(p)
        rec.update(summarise(ctx.arch, loss, parts, g))
        agree, rec["f64"] = f64_agreement(case, ctx64[folder], t64[folder], rec["loss"], rec["parts"], g)
        out["cases"].append(rec)
        results[case["name"]] = (rec, g)
        worst = {k: max(worst.get(k, 0.0), v) for k, v in agree.items()}
        assert max(agree.values()) < 8e-6, (case["name"], agree)
        pt = " ".join(f"{k} {v:+.6f}" for k, v in rec["parts"].items())
        log(f"{case['name']:<53} loss {rec['loss']:+.6f} ({pt}) |g| {rec['global_grad_norm']:.4f}  "
            f"f32~f64 {agree['value']:.0e}/{agree['norm']:.0e}/{agree['entry']:.0e}")

    # graddiff = ga's forget part + the retain NLL
    for folder in MODELS:
        ga, gd = results[f"{folder}/ga"][0], results[f"{folder}/graddiff"][0]
        ctx, tb = ctxs[folder], tensors[folder]
        with torch.no_grad():
            r = nll(ctx, ctx.theta, tb["retain"]).item()
        want = ga["parts"]["forget"] + r
        assert abs(gd["loss"] - want) <= 1e-6 * max(1.0, abs(want)), (folder, gd["loss"], want)
        assert gd["parts"]["forget"] == ga["parts"]["forget"] and gd["parts"]["retain"] == r
        assert abs(gd["loss"]) > 0.2 * abs(ga["loss"]), "graddiff loss dominated by cancellation"
    # τ = 0: η has no effect (target = 0 whatever z_c)
    for kl in ("forward", "reverse", "js"):
        a = results[f"llada_f32/mdu tau=0 eta=0 kl={kl}"][0]
        b = results[f"llada_f32/mdu tau=0 eta=1 kl={kl}"][0]
        assert a["loss"] == b["loss"] and a["grad_norm"] == b["grad_norm"]

    log(f"f32 vs f64, worst over cases: loss/parts {worst['value']:.1e}, grad norms {worst['norm']:.1e}, "
        f"grad entries (/tensor grad norm) {worst['entry']:.1e}")

    for name in FD_CASES:
        rec, g = results[name]
        fd_check(rec, ctx64[rec["model"]], t64[rec["model"]], g, out["models"][rec["model"]]["batches"]["forget"])

    os.makedirs(os.path.dirname(OUT_JSON), exist_ok=True)
    with open(OUT_JSON, "w") as f:
        f.write(to_json(out) + "\n")
    log(f"wrote {os.path.relpath(OUT_JSON, ROOT)}: {len(out['cases'])} cases, {os.path.getsize(OUT_JSON)} bytes")


if __name__ == "__main__":
    main()
