"""Minimal PyTorch reference forward pass for LLaDA and Dream (masked-diffusion LMs).

Written from the formulas in /work/shared/reference/mdlm.md (sections 1.4, 1.5, 3.4), not from the
upstream modeling code. Everything is computed in float32.

    forward_logits(weights, cfg, arch, input_ids, attention_mask=None) -> [B, L, V] float32

* `weights`: dict of HF tensor names -> tensors (any float dtype; upcast to float32 here).
* `cfg`: the parsed config.json of the checkpoint.
* `arch`: "llada" or "dream".
* Attention is bidirectional. `attention_mask` ([B, L], 1 = real token, 0 = padding) only masks KEYS:
  padded keys get an additive finfo(float32).min bias; padded query rows are still computed.
* RoPE is the half-rotation (NeoX / HF-Llama) form with positions arange(L).
* Raw logits: the Dream "right shift" is NOT applied here.
"""

from __future__ import annotations

import json
import math
import os

import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------
# config / tensor-name helpers
# ----------------------------------------------------------------------------------------------

def model_dims(cfg: dict, arch: str) -> dict:
    """Pull the architecture numbers out of a LLaDA or Dream config.json."""
    if arch == "llada":
        n_heads = cfg["n_heads"]
        n_kv = cfg.get("n_kv_heads") or n_heads
        if cfg.get("multi_query_attention"):
            n_kv = 1
        d = cfg["d_model"]
        return dict(
            d_model=d,
            n_layers=cfg["n_layers"],
            n_heads=n_heads,
            n_kv_heads=n_kv,
            head_dim=d // n_heads,
            eps=cfg["rms_norm_eps"],
            theta=cfg["rope_theta"],
        )
    if arch == "dream":
        n_heads = cfg["num_attention_heads"]
        d = cfg["hidden_size"]
        return dict(
            d_model=d,
            n_layers=cfg["num_hidden_layers"],
            n_heads=n_heads,
            n_kv_heads=cfg.get("num_key_value_heads") or n_heads,
            head_dim=d // n_heads,
            eps=cfg["rms_norm_eps"],
            theta=cfg["rope_theta"],
        )
    raise ValueError(f"unknown arch {arch!r}")


def layer_names(arch: str, i: int) -> dict:
    """Map generic roles -> HF tensor names for decoder layer i (None = tensor does not exist)."""
    if arch == "llada":
        p = f"model.transformer.blocks.{i}."
        return dict(
            attn_norm=p + "attn_norm.weight",
            q=p + "q_proj.weight",
            k=p + "k_proj.weight",
            v=p + "v_proj.weight",
            q_bias=None,
            k_bias=None,
            v_bias=None,
            o=p + "attn_out.weight",
            mlp_norm=p + "ff_norm.weight",
            gate=p + "ff_proj.weight",
            up=p + "up_proj.weight",
            down=p + "ff_out.weight",
        )
    p = f"model.layers.{i}."
    return dict(
        attn_norm=p + "input_layernorm.weight",
        q=p + "self_attn.q_proj.weight",
        k=p + "self_attn.k_proj.weight",
        v=p + "self_attn.v_proj.weight",
        q_bias=p + "self_attn.q_proj.bias",
        k_bias=p + "self_attn.k_proj.bias",
        v_bias=p + "self_attn.v_proj.bias",
        o=p + "self_attn.o_proj.weight",
        mlp_norm=p + "post_attention_layernorm.weight",
        gate=p + "mlp.gate_proj.weight",
        up=p + "mlp.up_proj.weight",
        down=p + "mlp.down_proj.weight",
    )


def top_names(arch: str) -> dict:
    if arch == "llada":
        return dict(
            embed="model.transformer.wte.weight",
            final_norm="model.transformer.ln_f.weight",
            head="model.transformer.ff_out.weight",
        )
    return dict(embed="model.embed_tokens.weight", final_norm="model.norm.weight", head="lm_head.weight")


def arch_of(cfg: dict) -> str:
    mt = str(cfg.get("model_type", "")).lower()
    if mt == "llada":
        return "llada"
    if mt == "dream":
        return "dream"
    raise ValueError(f"unknown model_type {cfg.get('model_type')!r}")


# ----------------------------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------------------------

def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """y = weight * (x / sqrt(mean(x^2) + eps)); the normalisation runs in float32."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def rope_cos_sin(seq_len: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [L, head_dim] for positions arange(L), half-rotation layout cat(freqs, freqs)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    pos = torch.arange(seq_len, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)  # [L, head_dim/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [L, head_dim]
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, H, L, hd]; cos/sin: [L, hd]."""
    return x * cos + rotate_half(x) * sin


def key_padding_bias(attention_mask: torch.Tensor | None, seq_len: int) -> torch.Tensor | None:
    """[B,1,1,L] additive bias: 0 for real keys, finfo(float32).min for padded keys.

    None (fully bidirectional, no bias) when there is no mask or the mask has no zeros.
    """
    if attention_mask is None:
        return None
    am = attention_mask.to(torch.float32)
    assert am.shape[-1] == seq_len
    if bool((am != 0).all()):
        return None
    return (1.0 - am)[:, None, None, :] * torch.finfo(torch.float32).min


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x @ w^T (+ b); w is stored [out_features, in_features] like nn.Linear."""
    y = x @ w.t()
    if b is not None:
        y = y + b
    return y


# ----------------------------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------------------------

def forward_logits(
    weights: dict,
    cfg: dict,
    arch: str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Full bidirectional forward; returns raw logits [B, L, V] in float32."""
    dims = model_dims(cfg, arch)
    H, KV, hd, eps = dims["n_heads"], dims["n_kv_heads"], dims["head_dim"], dims["eps"]
    assert H % KV == 0, "n_heads must be a multiple of n_kv_heads"
    rep = H // KV

    def w(name):
        return None if name is None else weights[name].to(torch.float32)

    B, L = input_ids.shape
    top = top_names(arch)
    x = F.embedding(input_ids, w(top["embed"]))  # [B, L, D]; no scaling, no position embedding
    bias = key_padding_bias(attention_mask, L)
    cos, sin = rope_cos_sin(L, hd, float(dims["theta"]))
    scale = 1.0 / math.sqrt(hd)

    for i in range(dims["n_layers"]):
        n = layer_names(arch, i)
        # --- attention ---
        h = rms_norm(x, w(n["attn_norm"]), eps)
        q = linear(h, w(n["q"]), w(n["q_bias"])).view(B, L, H, hd).transpose(1, 2)  # [B,H,L,hd]
        k = linear(h, w(n["k"]), w(n["k_bias"])).view(B, L, KV, hd).transpose(1, 2)  # [B,KV,L,hd]
        v = linear(h, w(n["v"]), w(n["v_bias"])).view(B, L, KV, hd).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        # GQA: kv head g serves q heads g*rep .. g*rep+rep-1 (contiguous repeat)
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-1, -2)) * scale  # [B,H,L,L], bidirectional: no causal mask
        if bias is not None:
            scores = scores + bias
        probs = torch.softmax(scores, dim=-1)
        a = (probs @ v).transpose(1, 2).reshape(B, L, H * hd)
        x = x + linear(a, w(n["o"]))
        # --- SwiGLU MLP ---
        h = rms_norm(x, w(n["mlp_norm"]), eps)
        x = x + linear(F.silu(linear(h, w(n["gate"]))) * linear(h, w(n["up"])), w(n["down"]))

    x = rms_norm(x, w(top["final_norm"]), eps)
    return linear(x, w(top["head"])).to(torch.float32)


# ----------------------------------------------------------------------------------------------
# checkpoint loading (single file or sharded index)
# ----------------------------------------------------------------------------------------------

def safetensors_files(ckpt_dir: str) -> list[str]:
    """Absolute paths of the weight files of an HF folder (index.json order, else model.safetensors)."""
    index = os.path.join(ckpt_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        return [os.path.join(ckpt_dir, fn) for fn in sorted(set(wm.values()))]
    single = os.path.join(ckpt_dir, "model.safetensors")
    if os.path.exists(single):
        return [single]
    raise FileNotFoundError(f"no model.safetensors or model.safetensors.index.json in {ckpt_dir}")


def load_checkpoint(ckpt_dir: str) -> tuple[dict, dict]:
    """Returns (config dict, {name: tensor in its stored dtype})."""
    from safetensors.torch import load_file

    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = json.load(f)
    weights = {}
    for path in safetensors_files(ckpt_dir):
        part = load_file(path)
        dup = set(part) & set(weights)
        assert not dup, f"tensors stored twice: {sorted(dup)}"
        weights.update(part)
    return cfg, weights
