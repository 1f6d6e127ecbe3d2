#!/usr/bin/env python3
"""Deterministic fixtures for two more architectures: Qwen3 "A2D" (bidirectional Qwen3) and LLaDA-MoE.

Usage:
    /opt/venv/bin/python scripts/make_arch_fixtures.py [--dllm /work/.mirror/ZHZisZZ+dllm/repo]

Writes (and replaces only these):
    tests/fixtures/qwen3_a2d/                      config.json, model.safetensors, tokenizer.json,
    tests/fixtures/llada_moe/                      tokenizer_config.json, special_tokens_map.json
    tests/fixtures/reference/qwen3_a2d.json        reference logits (schema of reference/dream_gqa.json)
    tests/fixtures/reference/llada_moe.json
    tests/fixtures/reference/arch_tokenizer_cases.json

Two independent references per checkpoint:
  * the formula implementation in this file (`qwen3_forward`, `lladamoe_forward`), written from the
    formulas (like scripts/mdlm_ref.py, whose RMSNorm / RoPE table / key-padding helpers it reuses);
  * the upstream code: transformers 4.57 `Qwen3ForCausalLM` with a 4-D additive float mask (so no
    causal mask is built; cross-checked against dllm's `A2DQwen3LMHeadModel` with a 2-D mask), and
    dllm's `LLaDAMoEModelLM` (eager attention; sdpa cross-checked). The two dllm files are read with
    `git show HEAD:...` from the dllm git directory into a temporary package at run time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)
import make_fixtures as mf  # noqa: E402  (no side effects at import: constants and functions only)
import mdlm_ref  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers, processors  # noqa: E402

FIXTURES = mf.FIXTURES
REFERENCE = mf.REFERENCE
ATOL = mf.ATOL
FMIN = mf.FMIN
REF_MASK = mf.REF_MASK
MAT_STD = mf.MAT_STD  # 0.3
NORM_STD = 0.1  # norm weights 1 + 0.1 N(0,1)
GATE_STD = MAT_STD  # router gate weights (logit std ~ 0.3 * sqrt(32) ~ 1.7)
EXPERT_BIAS_STD = 0.05
TIE_MARGIN = 1e-3  # min gap between the k-th and (k+1)-th biased router score on the reference inputs
DEFAULT_DLLM = "/work/.mirror/ZHZisZZ+dllm/repo"
OWNED_DIRS = ["qwen3_a2d", "llada_moe"]
OWNED_REFS = ["qwen3_a2d.json", "llada_moe.json", "arch_tokenizer_cases.json"]
SEEDS = {"qwen3_a2d": 11, "llada_moe": 12}

# ----------------------------------------------------------------------------------------------
# tokenizers
# ----------------------------------------------------------------------------------------------

# (content, special). Qwen3 marks <think>/</think> as added but NOT special (so decode with
# skip_special_tokens keeps them); <|mask|> is added the way dllm does it (add_special_tokens mask_token).
ADDED_QWEN3 = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<think>", False),
    ("</think>", False),
    ("<|mask|>", True),
]
ADDED_LLADA_MOE = [
    ("<|endoftext|>", True),
    ("<role>", True),
    ("</role>", True),
    ("<|role_end|>", True),
    ("<|mask|>", True),
]

# Written for this project. Plain messages render like Qwen3's template: every message as
# <|im_start|>{role}\n{content}<|im_end|>\n; like Qwen3, a final assistant message after the last user
# message carries an empty think block (so the add_generation_prompt rendering of the prompt, with
# enable_thinking=false, is a prefix of the rendering of the whole conversation, as dllm's SFT needs).
QWEN3_TEMPLATE = r"""{%- set ns = namespace(last_user=-1) -%}
{%- for message in messages -%}
    {%- if message['role'] == 'user' -%}
        {%- set ns.last_user = loop.index0 -%}
    {%- endif -%}
{%- endfor -%}
{%- for message in messages -%}
    {{- '<|im_start|>' + message['role'] + '\n' -}}
    {%- if message['role'] == 'assistant' and loop.last and loop.index0 > ns.last_user -%}
        {{- '<think>\n\n</think>\n\n' -}}
    {%- endif -%}
    {{- message['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
    {%- if enable_thinking is defined and not enable_thinking -%}
        {{- '<think>\n\n</think>\n\n' -}}
    {%- endif -%}
{%- endif -%}"""

# Written for this project, in the LLaDA-MoE / Ling role-tag style.
LLADA_MOE_TEMPLATE = r"""{%- for message in messages -%}
    {%- if message['role'] == 'system' -%}
        {{- '<role>SYSTEM</role>' + message['content'] + '<|role_end|>' -}}
    {%- elif message['role'] == 'user' -%}
        {{- '<role>HUMAN</role>' + message['content'] + '<|role_end|>' -}}
    {%- elif message['role'] == 'assistant' -%}
        {{- '<role>ASSISTANT</role>' + message['content'] + '<|role_end|>' -}}
    {%- else -%}
        {{- raise_exception('unsupported role: ' + message['role']) -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<role>ASSISTANT</role>' -}}
{%- endif -%}"""

SYSTEM_QUESTION = [{"role": "system", "content": "Be brief."}] + mf.QUESTION

_Q = "<|im_start|>user\n What is 2+2? <|im_end|>\n"
_NOTHINK = "<think>\n\n</think>\n\n"
EXPECT_QWEN3 = {
    ("question", True): _Q + "<|im_start|>assistant\n" + _NOTHINK,
    ("question", False): _Q,
    ("with_answer", False): _Q + "<|im_start|>assistant\n" + _NOTHINK + "4.<|im_end|>\n",
    ("with_answer", True): _Q + "<|im_start|>assistant\n" + _NOTHINK + "4.<|im_end|>\n<|im_start|>assistant\n" + _NOTHINK,
    ("system", True): "<|im_start|>system\nBe brief.<|im_end|>\n" + _Q + "<|im_start|>assistant\n" + _NOTHINK,
}
_H = "<role>HUMAN</role> What is 2+2? <|role_end|>"
EXPECT_LLADA_MOE = {
    ("question", True): _H + "<role>ASSISTANT</role>",
    ("question", False): _H,
    ("with_answer", False): _H + "<role>ASSISTANT</role>4.<|role_end|>",
    ("with_answer", True): _H + "<role>ASSISTANT</role>4.<|role_end|><role>ASSISTANT</role>",
    ("system", True): "<role>SYSTEM</role>Be brief.<|role_end|>" + _H + "<role>ASSISTANT</role>",
}
MESSAGES = {"question": mf.QUESTION, "with_answer": mf.QA, "system": SYSTEM_QUESTION}

EXTRA_TEXTS = {
    "qwen3_a2d": [
        "<|im_start|>assistant\n<think>\n\n</think>\n\n4.<|im_end|>\n<|endoftext|>",
        "a<think>b</think>c <|mask|><|mask|>x",
    ],
    "llada_moe": [
        "<role>HUMAN</role>Hi<|role_end|><role>ASSISTANT</role><|mask|><|mask|><|endoftext|>",
        "<role>SYSTEM</role>x</role>y<|role_end|>",
    ],
}


def make_bpe_tokenizer(out_dir: str, added: list[tuple[str, bool]]) -> dict:
    """Qwen2-style byte-level BPE (NFC, Qwen2 split regex, byte-level) trained on make_fixtures' corpus,
    saved as an HF fast `tokenizer.json`, with `added` appended in order."""
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(mf.PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok = mf.train_bpe(pre, normalizers.NFC())
    # the ByteLevel post-processor settings of Qwen2/Qwen3 tokenizer.json files (offsets only, ids unchanged)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    n_bpe = tok.get_vocab_size()
    # same BPE as the Dream fixture (same corpus, same pre-tokenizer)
    dream_vocab = json.load(open(os.path.join(mf.TOK_DIR, "dream", "vocab.json"), encoding="utf-8"))
    assert tok.get_vocab(with_added_tokens=False) == dream_vocab, "BPE differs from tests/fixtures/tokenizers/dream"
    for content, special in added:
        t = AddedToken(content, special=special, normalized=False)
        n = tok.add_special_tokens([t]) if special else tok.add_tokens([t])
        assert n == 1, content
    ids = {c: tok.token_to_id(c) for c, _ in added}
    assert [ids[c] for c, _ in added] == list(range(n_bpe, n_bpe + len(added))), ids
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    return {"size": tok.get_vocab_size(with_added_tokens=True), "n_bpe": n_bpe, "ids": ids}


def added_entry(content: str, special: bool) -> dict:
    e = mf.added_token_entry(content)
    e["special"] = special
    return e


def write_tokenizer_configs(out_dir: str, added, tok: dict, extra: dict, special_map: dict):
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(tok["ids"][c]): added_entry(c, s) for c, s in added},
        **extra,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "model_max_length": 512,
        "split_special_tokens": False,
        "unk_token": None,
    }
    mf.write_json(os.path.join(out_dir, "tokenizer_config.json"), dict(sorted(cfg.items())))
    mf.write_json(os.path.join(out_dir, "special_tokens_map.json"), special_map)


def make_qwen3_tokenizer(out_dir: str) -> dict:
    tok = make_bpe_tokenizer(out_dir, ADDED_QWEN3)
    write_tokenizer_configs(
        out_dir,
        ADDED_QWEN3,
        tok,
        {
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": None,
            "chat_template": QWEN3_TEMPLATE,
            "eos_token": "<|im_end|>",
            "mask_token": "<|mask|>",
            "pad_token": "<|endoftext|>",
            "tokenizer_class": "Qwen2Tokenizer",
        },
        {
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "eos_token": "<|im_end|>",
            "mask_token": "<|mask|>",
            "pad_token": "<|endoftext|>",
        },
    )
    return tok


def make_llada_moe_tokenizer(out_dir: str) -> dict:
    tok = make_bpe_tokenizer(out_dir, ADDED_LLADA_MOE)
    write_tokenizer_configs(
        out_dir,
        ADDED_LLADA_MOE,
        tok,
        {
            "additional_special_tokens": ["<role>", "</role>", "<|role_end|>"],
            "bos_token": None,
            "chat_template": LLADA_MOE_TEMPLATE,
            "eos_token": "<|endoftext|>",
            "mask_token": "<|mask|>",
            "pad_token": "<|endoftext|>",
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
        {
            "additional_special_tokens": ["<role>", "</role>", "<|role_end|>"],
            "eos_token": "<|endoftext|>",
            "mask_token": "<|mask|>",
            "pad_token": "<|endoftext|>",
        },
    )
    return tok


# ----------------------------------------------------------------------------------------------
# configs and weights
# ----------------------------------------------------------------------------------------------

def qwen3_config(tok: dict) -> dict:
    ids = tok["ids"]
    cfg = {
        "architectures": ["A2DQwen3LMHeadModel"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "head_dim": 16,  # deliberately != hidden_size / num_attention_heads (8)
        "hidden_act": "silu",
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 48,
        "max_position_embeddings": 512,
        "max_window_layers": 2,
        "model_type": "a2d-qwen3",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "pad_token_id": ids["<|endoftext|>"],
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "transformers_version": "4.57.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": mf.round_up(tok["size"]),
    }
    return dict(sorted(cfg.items()))


def llada_moe_config(tok: dict) -> dict:
    ids = tok["ids"]
    cfg = {
        "architectures": ["LLaDAMoEModelLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "clip_qkv": None,
        "dense_intermediate_size": 48,
        "eos_token_id": ids["<|endoftext|>"],
        "expert_intermediate_size": 16,
        "hidden_act": "silu",
        "hidden_size": 32,
        "initializer_range": 0.02,
        "mask_token_id": ids["<|mask|>"],
        "max_position_embeddings": 512,
        "model_type": "llada",  # what the released LLaDA-MoE checkpoints say; recognise by layout
        "moe_layer_freq": [0, 1, 1],
        "moe_router_enable_expert_bias": True,
        "moe_router_score_function": "softmax",
        "norm_topk_prob": False,
        "num_attention_heads": 4,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "num_hidden_layers": 3,
        "num_key_value_heads": 2,
        "output_router_logits": False,
        "pad_token_id": ids["<|endoftext|>"],
        "partial_rotary_factor": 0.5,
        "qk_layernorm": True,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 50000.0,
        "routed_scaling_factor": 1,
        "router_aux_loss_coef": 0.01,
        "shared_expert_intermediate_size": 24,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.57.0",
        "use_cache": False,
        "vocab_size": mf.round_up(tok["size"]),
    }
    return dict(sorted(cfg.items()))


def qwen3_shapes(cfg: dict) -> dict:
    D, H, KV, hd, Fi = (cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"],
                        cfg["head_dim"], cfg["intermediate_size"])
    s = {"model.embed_tokens.weight": (cfg["vocab_size"], D)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = (D,)
        s[p + "self_attn.q_proj.weight"] = (H * hd, D)
        s[p + "self_attn.k_proj.weight"] = (KV * hd, D)
        s[p + "self_attn.v_proj.weight"] = (KV * hd, D)
        s[p + "self_attn.o_proj.weight"] = (D, H * hd)
        s[p + "self_attn.q_norm.weight"] = (hd,)
        s[p + "self_attn.k_norm.weight"] = (hd,)
        s[p + "post_attention_layernorm.weight"] = (D,)
        s[p + "mlp.gate_proj.weight"] = (Fi, D)
        s[p + "mlp.up_proj.weight"] = (Fi, D)
        s[p + "mlp.down_proj.weight"] = (D, Fi)
    s["model.norm.weight"] = (D,)
    assert cfg["tie_word_embeddings"]  # tied: no lm_head.weight
    return s


def lladamoe_shapes(cfg: dict) -> dict:
    D, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = D // H
    E = cfg["num_experts"]
    s = {"model.embed_tokens.weight": (cfg["vocab_size"], D)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = (D,)
        s[p + "self_attn.q_proj.weight"] = (H * hd, D)
        s[p + "self_attn.k_proj.weight"] = (KV * hd, D)
        s[p + "self_attn.v_proj.weight"] = (KV * hd, D)
        s[p + "self_attn.o_proj.weight"] = (D, D)
        if cfg["qk_layernorm"]:
            s[p + "self_attn.q_norm.weight"] = (hd,)
            s[p + "self_attn.k_norm.weight"] = (hd,)
        s[p + "post_attention_layernorm.weight"] = (D,)
        if cfg["moe_layer_freq"][i] == 0:
            Fd = cfg["dense_intermediate_size"]
            s[p + "mlp.gate_proj.weight"] = (Fd, D)
            s[p + "mlp.up_proj.weight"] = (Fd, D)
            s[p + "mlp.down_proj.weight"] = (D, Fd)
        else:
            Fe = cfg["expert_intermediate_size"]
            s[p + "mlp.gate.weight"] = (E, D)
            if cfg["moe_router_enable_expert_bias"]:
                s[p + "mlp.expert_bias"] = (E,)
            for e in range(E):
                s[p + f"mlp.experts.{e}.gate_proj.weight"] = (Fe, D)
                s[p + f"mlp.experts.{e}.up_proj.weight"] = (Fe, D)
                s[p + f"mlp.experts.{e}.down_proj.weight"] = (D, Fe)
            if cfg["shared_expert_intermediate_size"] is not None:
                Fs = cfg["shared_expert_intermediate_size"]
                s[p + "shared_expert.gate_proj.weight"] = (Fs, D)
                s[p + "shared_expert.up_proj.weight"] = (Fs, D)
                s[p + "shared_expert.down_proj.weight"] = (D, Fs)
    s["model.norm.weight"] = (D,)
    s["lm_head.weight"] = (cfg["vocab_size"], D)
    return s


def random_weights(shapes: dict, seed: int) -> dict:
    """float32; names drawn in sorted order from one generator. Norms 1 + 0.1 N(0,1), expert_bias 0.05 N(0,1),
    router gate and all other matrices N(0, 0.3^2)."""
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name in sorted(shapes):
        shape = shapes[name]
        z = torch.randn(*shape, generator=g)
        if name.endswith("norm.weight"):  # input/post_attention_layernorm, q_norm, k_norm, model.norm
            t = 1.0 + NORM_STD * z
        elif name.endswith("mlp.expert_bias"):
            t = EXPERT_BIAS_STD * z
        elif name.endswith("mlp.gate.weight"):
            t = GATE_STD * z
        else:
            t = MAT_STD * z
        w[name] = t.contiguous()
    return w


# ----------------------------------------------------------------------------------------------
# formula implementations (independent of transformers / dllm)
# ----------------------------------------------------------------------------------------------

rms_norm = mdlm_ref.rms_norm
linear = mdlm_ref.linear


def rope_partial(x: torch.Tensor, pos_len: int, rot: int, theta: float) -> torch.Tensor:
    """Half-rotation RoPE on the first `rot` dims of the last axis (frequencies theta^(-2j/rot)),
    the remaining dims pass through. x: [B, H, L, hd]."""
    cos, sin = mdlm_ref.rope_cos_sin(pos_len, rot, theta)  # [L, rot]
    xr, xp = x[..., :rot], x[..., rot:]
    return torch.cat([mdlm_ref.apply_rope(xr, cos, sin), xp], dim=-1)


def attention(h, w, p, cfg, H, KV, hd, rot, theta, bias, qk_norm):
    B, L, _ = h.shape
    q = linear(h, w[p + "self_attn.q_proj.weight"]).view(B, L, H, hd)
    k = linear(h, w[p + "self_attn.k_proj.weight"]).view(B, L, KV, hd)
    v = linear(h, w[p + "self_attn.v_proj.weight"]).view(B, L, KV, hd)
    if qk_norm:  # RMSNorm over head_dim, per head, before RoPE
        q = rms_norm(q, w[p + "self_attn.q_norm.weight"], cfg["rms_norm_eps"])
        k = rms_norm(k, w[p + "self_attn.k_norm.weight"], cfg["rms_norm_eps"])
    clip = cfg.get("clip_qkv")
    if clip is not None:
        q, k, v = q.clamp(-clip, clip), k.clamp(-clip, clip), v.clamp(-clip, clip)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, heads, L, hd]
    q = rope_partial(q, L, rot, theta)
    k = rope_partial(k, L, rot, theta)
    rep = H // KV  # kv head g serves q heads g*rep .. g*rep+rep-1
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    scores = (q @ k.transpose(-1, -2)) / (hd ** 0.5)  # bidirectional, no causal mask
    if bias is not None:
        scores = scores + bias
    a = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, L, H * hd)
    return linear(a, w[p + "self_attn.o_proj.weight"])


def swiglu(h, w, p):
    return linear(F.silu(linear(h, w[p + "gate_proj.weight"])) * linear(h, w[p + "up_proj.weight"]), w[p + "down_proj.weight"])


def qwen3_forward(weights: dict, cfg: dict, input_ids, attention_mask=None) -> torch.Tensor:
    """Qwen3 with bidirectional attention: q/k RMSNorm over head_dim before full RoPE, GQA, SwiGLU,
    tied LM head (logits = h · embed^T). Raw logits, no shift."""
    w = {k: v.float() for k, v in weights.items()}
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, theta = cfg["rms_norm_eps"], float(cfg["rope_theta"])
    B, L = input_ids.shape
    bias = mdlm_ref.key_padding_bias(attention_mask, L)
    x = F.embedding(input_ids, w["model.embed_tokens.weight"])
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = x + attention(rms_norm(x, w[p + "input_layernorm.weight"], eps), w, p, cfg, H, KV, hd, hd, theta, bias, True)
        x = x + swiglu(rms_norm(x, w[p + "post_attention_layernorm.weight"], eps), w, p + "mlp.")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return linear(x, head)


def lladamoe_forward(weights: dict, cfg: dict, input_ids, attention_mask=None, router_log=None) -> torch.Tensor:
    """LLaDA-MoE: bidirectional attention, q/k RMSNorm over head_dim before RoPE, partial half-rotation RoPE on
    the first int(head_dim * partial_rotary_factor) dims; dense SwiGLU where moe_layer_freq[i] == 0, else
    router p = softmax(x Wg^T) (f32), s = p + expert_bias, top-k of s, output Σ s_e · expert_e(x) (no
    renormalisation) + shared_expert(x). Raw logits, untied head."""
    w = {k: v.float() for k, v in weights.items()}
    D, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = D // H
    rot = int(hd * cfg["partial_rotary_factor"])
    eps, theta, top_k, E = cfg["rms_norm_eps"], float(cfg["rope_theta"]), cfg["num_experts_per_tok"], cfg["num_experts"]
    B, L = input_ids.shape
    bias = mdlm_ref.key_padding_bias(attention_mask, L)
    x = F.embedding(input_ids, w["model.embed_tokens.weight"])
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = x + attention(rms_norm(x, w[p + "input_layernorm.weight"], eps), w, p, cfg, H, KV, hd, rot, theta, bias,
                          cfg["qk_layernorm"])
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        if cfg["moe_layer_freq"][i] == 0:
            y = swiglu(h, w, p + "mlp.")
        else:
            probs = torch.softmax(linear(h, w[p + "mlp.gate.weight"]).float(), dim=-1)  # [B, L, E]
            scores = probs + w[p + "mlp.expert_bias"] if cfg["moe_router_enable_expert_bias"] else probs
            sel = torch.argsort(scores, dim=-1, descending=True, stable=True)[..., :top_k]  # [B, L, k]
            gate_w = torch.gather(scores, -1, sel)  # the biased scores, not renormalised
            outs = torch.stack([swiglu(h, w, p + f"mlp.experts.{e}.") for e in range(E)], dim=-2)  # [B, L, E, D]
            chosen = torch.gather(outs, 2, sel[..., None].expand(B, L, top_k, D))  # [B, L, k, D]
            y = (gate_w[..., None] * chosen).sum(dim=2)
            if router_log is not None:
                router_log.append({"layer": i, "probs": probs, "scores": scores, "sel": sel})
            if cfg["shared_expert_intermediate_size"] is not None:
                y = y + swiglu(h, w, p + "shared_expert.")
        x = x + y
    x = rms_norm(x, w["model.norm.weight"], eps)
    return linear(x, w["lm_head.weight"])


# ----------------------------------------------------------------------------------------------
# upstream references
# ----------------------------------------------------------------------------------------------

DLLM_FILES = {
    "configuration_lladamoe.py": "dllm/pipelines/llada/models/configuration_lladamoe.py",
    "modeling_lladamoe.py": "dllm/pipelines/llada/models/modeling_lladamoe.py",
    "modeling_a2d_qwen3.py": "dllm/pipelines/a2d/models/qwen3/modeling_qwen3.py",
}


def load_dllm(dllm_git: str):
    """Import dllm's LLaDA-MoE and A2D-Qwen3 modules from `git show HEAD:` into a temporary package."""
    commit = subprocess.check_output(["git", "-C", dllm_git, "rev-parse", "HEAD"], text=True).strip()
    tmp = tempfile.mkdtemp(prefix="dllm_ref_")
    pkg = os.path.join(tmp, "dllm_ref_tmp")
    os.makedirs(pkg)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    for fn, rel in DLLM_FILES.items():
        src = subprocess.check_output(["git", "-C", dllm_git, "show", f"HEAD:{rel}"])
        with open(os.path.join(pkg, fn), "wb") as f:
            f.write(src)
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    sys.path.insert(0, tmp)
    try:
        moe = importlib.import_module("dllm_ref_tmp.modeling_lladamoe")
        a2d = importlib.import_module("dllm_ref_tmp.modeling_a2d_qwen3")
    finally:
        sys.path.remove(tmp)
        sys.dont_write_bytecode = old
        shutil.rmtree(tmp)
    return moe, a2d, commit


def four_d_mask(attention_mask, B, L):
    am = torch.ones(B, L) if attention_mask is None else attention_mask.to(torch.float32)
    return ((1.0 - am)[:, None, None, :] * FMIN).expand(B, 1, L, L).contiguous()


def qwen3_hf_config_kwargs(cfg: dict) -> dict:
    keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "initializer_range",
            "rms_norm_eps", "use_cache", "tie_word_embeddings", "rope_theta", "rope_scaling", "attention_bias",
            "use_sliding_window", "sliding_window", "max_window_layers", "attention_dropout", "bos_token_id",
            "eos_token_id", "pad_token_id"]
    return {k: cfg[k] for k in keys}


def load_tied(model, weights: dict):
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected and list(missing) == ["lm_head.weight"], (missing, unexpected)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm_head not tied"


def qwen3_hf_model(cfg: dict, weights: dict, attn="eager"):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    hcfg = Qwen3Config(**qwen3_hf_config_kwargs(cfg), attn_implementation=attn)
    model = Qwen3ForCausalLM(hcfg)
    sd_names = set(model.state_dict()) - {"lm_head.weight"}
    assert sd_names == set(weights), sorted(sd_names ^ set(weights))
    load_tied(model, {k: v.float() for k, v in weights.items()})
    assert model.config._attn_implementation == attn
    return model.float().eval()


def a2d_model(a2d_mod, cfg: dict, weights: dict):
    hcfg = a2d_mod.A2DQwen3Config(**qwen3_hf_config_kwargs(cfg), attn_implementation="eager")
    assert hcfg.model_type == cfg["model_type"] == "a2d-qwen3"
    model = a2d_mod.A2DQwen3LMHeadModel(hcfg)
    load_tied(model, {k: v.float() for k, v in weights.items()})
    return model.float().eval()


def lladamoe_model(moe_mod, cfg: dict, weights: dict, attn="eager"):
    d = dict(cfg)
    d["model_type"] = "lladamoe"  # in memory only; the file says "llada"
    hcfg = moe_mod.LLaDAMoEConfig.from_dict(d, attn_implementation=attn)
    model = moe_mod.LLaDAMoEModelLM(hcfg)
    assert model.config._attn_implementation == attn
    attn_cls = type(model.model.layers[0].self_attn).__name__
    assert attn_cls == {"eager": "LLaDAMoEAttention", "sdpa": "LLaDAMoESdpaAttention"}[attn], attn_cls
    sd = model.state_dict()
    assert set(sd) == set(weights), sorted(set(sd) ^ set(weights))
    for k, t in sd.items():
        assert tuple(t.shape) == tuple(weights[k].shape), (k, t.shape, weights[k].shape)
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    return model.float().eval()


def run(model, ids, mask=None, **kw):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, use_cache=False, **kw).logits.float()


# ----------------------------------------------------------------------------------------------
# references
# ----------------------------------------------------------------------------------------------

def common_checks(name, formula, ids, am, ref_nomask, ref_mask):
    std_pos = float(ref_nomask[0].std(dim=0).mean())
    assert std_pos > 0.3, f"{name}: logits barely differ between positions ({std_pos})"
    assert mf.max_abs(ref_mask[0], ref_nomask[0]) < 1e-5, f"{name}: row without padding must not change"
    assert mf.max_abs(ref_mask[1, :4], ref_nomask[1, :4]) > 1e-3, f"{name}: padding mask has no effect?"
    with torch.no_grad():
        short = formula(ids[1:, :4], None)
    d_drop = mf.max_abs(ref_mask[1, :4], short[0])
    assert d_drop < 1e-5, f"{name}: masked keys must behave like absent tokens ({d_drop})"
    return d_drop


def qwen3_references(cfg, w, ids, a2d_mod) -> dict:
    am = torch.tensor(REF_MASK)
    with torch.no_grad():
        ref_nomask = qwen3_forward(w, cfg, ids, None)
        ref_mask = qwen3_forward(w, cfg, ids, am)
    d_drop = common_checks("qwen3_a2d", lambda i, m: qwen3_forward(w, cfg, i, m), ids, am, ref_nomask, ref_mask)
    B, L = ids.shape
    model = qwen3_hf_model(cfg, w)
    tf_nomask = run(model, ids, four_d_mask(None, B, L))
    tf_mask = run(model, ids, four_d_mask(am, B, L))
    tf_causal = run(model, ids, None)  # the plain Qwen3 path builds a causal mask
    d_causal = mf.max_abs(tf_causal, tf_nomask)
    assert d_causal > 1e-2, f"transformers output does not depend on causality? {d_causal}"
    tf_short = run(model, ids[1:, :4], four_d_mask(None, 1, 4))
    assert mf.max_abs(tf_mask[1, :4], tf_short[0]) < 1e-5
    # dllm's A2D model, with its own 2-D -> 4-D padding-only mask, agrees with the 4-D-mask Qwen3 run
    a2d = a2d_model(a2d_mod, cfg, w)
    d_a2d = max(mf.max_abs(run(a2d, ids, None), tf_nomask), mf.max_abs(run(a2d, ids, am), tf_mask))
    assert d_a2d <= 1e-6, f"dllm A2DQwen3 vs transformers Qwen3 with a 4-D mask: {d_a2d}"
    sdpa = qwen3_hf_model(cfg, w, "sdpa")
    d_sdpa = max(mf.max_abs(run(sdpa, ids, four_d_mask(None, B, L)), tf_nomask),
                 mf.max_abs(run(sdpa, ids, four_d_mask(am, B, L)), tf_mask))
    assert d_sdpa <= ATOL, d_sdpa
    d_nomask, d_mask = mf.max_abs(ref_nomask, tf_nomask), mf.max_abs(ref_mask, tf_mask)
    assert d_nomask <= ATOL and d_mask <= ATOL, (d_nomask, d_mask)
    return {
        "logits_nomask": ref_nomask, "logits_mask": ref_mask,
        "transformers_logits_nomask": tf_nomask, "transformers_logits_mask": tf_mask,
        "stats": {"formula_vs_transformers_nomask": d_nomask, "formula_vs_transformers_mask": d_mask,
                  "causal_vs_bidirectional": d_causal, "a2d_vs_qwen3_4d": d_a2d, "sdpa_vs_eager": d_sdpa,
                  "mask_vs_drop": d_drop},
    }


def check_router(cfg, w, ids, am) -> dict:
    """Top-k choices are unambiguous (gap > TIE_MARGIN), vary between tokens, and the bias matters."""
    k = cfg["num_experts_per_tok"]
    min_gap, n_flip, sets, used = float("inf"), 0, {}, {}
    for m, inp in ((None, ids), (am, ids), (None, ids[1:, :4])):
        log = []
        with torch.no_grad():
            lladamoe_forward(w, cfg, inp, m, router_log=log)
        for rec in log:
            s = rec["scores"].reshape(-1, cfg["num_experts"])
            srt = s.sort(dim=-1, descending=True).values
            min_gap = min(min_gap, float((srt[:, k - 1] - srt[:, k]).min()))
            sel = rec["sel"].reshape(-1, k).sort(dim=-1).values
            nobias = rec["probs"].reshape(-1, cfg["num_experts"]).topk(k, dim=-1).indices.sort(dim=-1).values
            n_flip += int((sel != nobias).any(dim=-1).sum())
            sets.setdefault(rec["layer"], set()).update(tuple(r) for r in sel.tolist())
            used.setdefault(rec["layer"], set()).update(sel.flatten().tolist())
    assert min_gap > TIE_MARGIN, f"router top-k nearly tied on the reference inputs (gap {min_gap:.2e})"
    for layer, ss in sets.items():
        assert len(ss) >= 3, f"layer {layer}: only {len(ss)} distinct top-k sets"
        assert used[layer] == set(range(cfg["num_experts"])), f"layer {layer}: experts used {used[layer]}"
    assert n_flip > 0, "expert_bias never changes a top-k choice on the reference inputs"
    return {"min_topk_gap": min_gap, "bias_flips": n_flip,
            "distinct_topk_sets": {layer: len(ss) for layer, ss in sorted(sets.items())}}


def llada_moe_references(cfg, w, ids, moe_mod) -> dict:
    am = torch.tensor(REF_MASK)
    with torch.no_grad():
        ref_nomask = lladamoe_forward(w, cfg, ids, None)
        ref_mask = lladamoe_forward(w, cfg, ids, am)
    d_drop = common_checks("llada_moe", lambda i, m: lladamoe_forward(w, cfg, i, m), ids, am, ref_nomask, ref_mask)
    router = check_router(cfg, w, ids, am)
    model = lladamoe_model(moe_mod, cfg, w, "eager")
    tf_nomask = run(model, ids, None)
    tf_mask = run(model, ids, am)
    assert mf.max_abs(run(model, ids, torch.ones_like(am)), tf_nomask) <= 1e-6
    tf_short = run(model, ids[1:, :4], None)
    assert mf.max_abs(tf_mask[1, :4], tf_short[0]) < 1e-5
    sdpa = lladamoe_model(moe_mod, cfg, w, "sdpa")
    d_sdpa = max(mf.max_abs(run(sdpa, ids, None), tf_nomask), mf.max_abs(run(sdpa, ids, am), tf_mask))
    assert d_sdpa <= ATOL, d_sdpa
    d_nomask, d_mask = mf.max_abs(ref_nomask, tf_nomask), mf.max_abs(ref_mask, tf_mask)
    assert d_nomask <= ATOL and d_mask <= ATOL, (d_nomask, d_mask)
    return {
        "logits_nomask": ref_nomask, "logits_mask": ref_mask,
        "transformers_logits_nomask": tf_nomask, "transformers_logits_mask": tf_mask,
        "stats": {"formula_vs_dllm_nomask": d_nomask, "formula_vs_dllm_mask": d_mask, "sdpa_vs_eager": d_sdpa,
                  "mask_vs_drop": d_drop, **router},
    }


# ----------------------------------------------------------------------------------------------
# tokenizer / template cases
# ----------------------------------------------------------------------------------------------

def tokenizer_cases(dirs: dict, configs: dict) -> dict:
    from transformers import AutoTokenizer

    texts, templates, special = [], [], []
    for name, tok_dir in dirs.items():
        raw = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
        hf = AutoTokenizer.from_pretrained(tok_dir)
        want_cls = {"qwen3_a2d": "Qwen2TokenizerFast", "llada_moe": "PreTrainedTokenizerFast"}[name]
        assert type(hf).__name__ == want_cls, type(hf)
        for text in mf.DREAM_TEXTS + EXTRA_TEXTS[name]:
            ids = hf(text, add_special_tokens=False)["input_ids"]
            assert ids == raw.encode(text, add_special_tokens=False).ids, (name, text)
            back = raw.decode(ids, skip_special_tokens=False)
            assert back == unicodedata.normalize("NFC", text), (name, text, back)
            texts.append({"checkpoint": name, "text": text, "ids": ids})

        expect = EXPECT_QWEN3 if name == "qwen3_a2d" else EXPECT_LLADA_MOE
        kw = {"enable_thinking": False} if name == "qwen3_a2d" else {}
        for (msgs_name, agp), want in expect.items():
            msgs = MESSAGES[msgs_name]
            rendered = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=agp, **kw)
            assert rendered == want, (name, msgs_name, agp, rendered, want)
            ids = hf.encode(rendered, add_special_tokens=False)
            assert ids == raw.encode(rendered, add_special_tokens=False).ids
            templates.append({
                "name": f"{name}_{msgs_name}_agp_{str(agp).lower()}",
                "checkpoint": name,
                "template": "engine",
                "messages": msgs,
                "add_generation_prompt": agp,
                "rendered": rendered,
                "ids": ids,
            })
        # dllm's SFT split: the prompt rendering (add_generation_prompt) is a prefix of the full conversation
        by = {t["name"]: t for t in templates if t["checkpoint"] == name}
        prompt, full = by[f"{name}_question_agp_true"], by[f"{name}_with_answer_agp_false"]
        assert full["rendered"].startswith(prompt["rendered"]) and full["ids"][: len(prompt["ids"])] == prompt["ids"]
        if name == "qwen3_a2d":
            plain = hf.apply_chat_template(mf.QUESTION, tokenize=False, add_generation_prompt=True)
            assert plain == _Q + "<|im_start|>assistant\n", plain  # no think block without enable_thinking=False

        cfg = configs[name]
        eot = "<|im_end|>" if name == "qwen3_a2d" else "<|role_end|>"
        mask_id = hf.convert_tokens_to_ids("<|mask|>")
        assert hf.mask_token_id == mask_id and hf.eos_token_id == cfg["eos_token_id"] and hf.pad_token_id == cfg["pad_token_id"]
        if "mask_token_id" in cfg:
            assert cfg["mask_token_id"] == mask_id
        special.append({
            "checkpoint": name,
            "mask": mask_id,
            "eos": cfg["eos_token_id"],
            "eot": hf.convert_tokens_to_ids(eot),
            "pad": cfg["pad_token_id"],
            "bos": hf.bos_token_id,
        })
    return {"texts": texts, "templates": templates, "special": special}


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def generate(dllm_git: str):
    torch.manual_seed(0)
    torch.set_num_threads(1)  # bitwise-stable float reductions between runs
    moe_mod, a2d_mod, commit = load_dllm(dllm_git)
    print(f"dllm reference code: {dllm_git} @ {commit}")
    for sub in OWNED_DIRS:
        shutil.rmtree(os.path.join(FIXTURES, sub), ignore_errors=True)
    for fn in OWNED_REFS:
        if os.path.exists(os.path.join(REFERENCE, fn)):
            os.remove(os.path.join(REFERENCE, fn))
    os.makedirs(REFERENCE, exist_ok=True)

    dirs = {name: os.path.join(FIXTURES, name) for name in OWNED_DIRS}
    toks = {"qwen3_a2d": make_qwen3_tokenizer(dirs["qwen3_a2d"]), "llada_moe": make_llada_moe_tokenizer(dirs["llada_moe"])}
    configs = {"qwen3_a2d": qwen3_config(toks["qwen3_a2d"]), "llada_moe": llada_moe_config(toks["llada_moe"])}
    shapes = {"qwen3_a2d": qwen3_shapes(configs["qwen3_a2d"]), "llada_moe": lladamoe_shapes(configs["llada_moe"])}

    results = {}
    for name in OWNED_DIRS:
        tok, cfg = toks[name], configs[name]
        print(f"\n== {name}: {tok['n_bpe']} BPE + {len(tok['ids'])} added = {tok['size']} tokens, vocab_size "
              f"{cfg['vocab_size']}; added ids {tok['ids']}")
        mf.save_checkpoint(dirs[name], cfg, random_weights(shapes[name], SEEDS[name]))
        cfg_disk, w = mdlm_ref.load_checkpoint(dirs[name])
        assert cfg_disk == cfg and {k: tuple(v.shape) for k, v in w.items()} == shapes[name]
        assert all(t.dtype == torch.float32 for t in w.values())
        for k in sorted(w):
            print(f"  {k:48s} {list(w[k].shape)}")
        ids = mf.reference_inputs({**cfg, "mask_token_id": tok["ids"]["<|mask|>"]}, tok, SEEDS[name])
        if name == "qwen3_a2d":
            r = qwen3_references(cfg, w, ids, a2d_mod)
        else:
            r = llada_moe_references(cfg, w, ids, moe_mod)
        path = os.path.join(REFERENCE, f"{name}.json")
        mf.write_reference_json(path, {
            "checkpoint": name,
            "arch": name,
            "weights_dtype": "float32",
            "vocab_size": int(r["logits_nomask"].shape[-1]),
            "input_ids": ids.tolist(),
            "attention_mask": REF_MASK,
            "logits_nomask": mf.tensor_to_list(r["logits_nomask"]),
            "logits_mask": mf.tensor_to_list(r["logits_mask"]),
            "transformers_logits_nomask": mf.tensor_to_list(r["transformers_logits_nomask"]),
            "transformers_logits_mask": mf.tensor_to_list(r["transformers_logits_mask"]),
        })
        ref = json.load(open(path))
        for key in ("logits_nomask", "logits_mask", "transformers_logits_nomask", "transformers_logits_mask"):
            assert torch.equal(torch.tensor(ref[key], dtype=torch.float32), r[key]), (name, key)
        assert ref["vocab_size"] == cfg["vocab_size"]
        results[name] = r
        print(f"  input_ids {ids.tolist()}")
        for k, v in r["stats"].items():
            print(f"  {k}: {v:.3e}" if isinstance(v, float) else f"  {k}: {v}")

    cases = tokenizer_cases(dirs, configs)
    mf.write_tokenizer_cases(os.path.join(REFERENCE, "arch_tokenizer_cases.json"), cases)
    print(f"\ntokenizer cases: {len(cases['texts'])} texts, {len(cases['templates'])} templates; special {cases['special']}")

    folders = sum(dir_size(d) for d in dirs.values())
    refs = sum(os.path.getsize(os.path.join(REFERENCE, fn)) for fn in OWNED_REFS)
    print(f"fixture folders: {folders} bytes; reference files: {refs} bytes")
    assert folders < 400_000, "fixture folders exceed 400 KB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dllm", default=DEFAULT_DLLM, help="dllm git directory (read with git show HEAD:...)")
    args = ap.parse_args()
    generate(args.dllm)


if __name__ == "__main__":
    main()
