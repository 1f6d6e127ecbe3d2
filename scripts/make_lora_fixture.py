"""LoRA adapter fixtures written by the real Hugging Face PEFT library, and a checker for adapters saved elsewhere.

For each base checkpoint, `llada_f32` and `dream_gqa` (`tests/fixtures/<name>/model.safetensors`):

1. Build a plain torch nn.Module tree whose module paths reproduce the checkpoint's tensor names exactly
   (nn.Linear with bias only where the checkpoint has one, nn.Embedding for the token embedding, a small
   module holding one `weight` Parameter for each RMSNorm). Load every tensor with
   `load_state_dict(strict=True)` (every tensor used, every shape checked). No forward pass is needed, and
   transformers' model classes are not used: PEFT wraps the custom module as it is (task_type None, so
   `adapter_config.json` gets PEFT's `auto_mapping` with the class name and `parent_library` "__main__").
2. `peft.get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none",
   target_modules=...))`.
   * llada_f32: a regex string, which PEFT matches with `re.fullmatch` against each module name:
     `model\\.transformer\\.blocks\\.\\d+\\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)`.
     It takes the block's `ff_out` (down projection) but not the LM head `model.transformer.ff_out`; the
     script asserts that the LM head, embedding and norms got no adapter. (A list target `["ff_out", ...]`
     would suffix-match the LM head too.)
   * dream_gqa: the list `["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]`.
3. Overwrite every lora_A / lora_B weight (in `named_parameters()` order) with
   N(0, 1) * 0.05 from one `torch.Generator` seeded 1234, so B is not zero and a merge changes the weights.
   The scale PEFT uses is lora_alpha / r = 2.0 (use_rslora false): W' = W + 2.0 * B @ A.
4. `save_pretrained(tests/fixtures/lora/<name>_peft/)` writes `adapter_config.json` and
   `adapter_model.safetensors` with PEFT's own key names, e.g.
   `base_model.model.model.transformer.blocks.0.q_proj.lora_A.weight` (no adapter name in the key).
   base_model_name_or_path is `../../<name>` (the base fixture, relative to the adapter folder). It is not
   edited after saving: the root module carries `name_or_path = "../../<name>"`, which `get_peft_model`
   copies into the config, and the script asserts the saved JSON has it. The one edit after saving: PEFT
   writes a list `target_modules` (Dream) as `list(set)`, in an order that depends on Python's per-process
   string-hash seed, so the script sorts that list and rewrites the JSON in PEFT's own format
   (`json.dumps(indent=2, sort_keys=True)`, no trailing newline). `save_pretrained` also writes a
   model card `README.md` (huggingface_hub template boilerplate); the script deletes it to keep the
   fixture small, so the folder holds only what an adapter loader reads.
5. `merge_and_unload()` and write `<name>_peft/merged_reference.safetensors`: every tensor of the merged
   model (f32) under the base checkpoint's HF names. Asserted: PEFT's merge equals W + (alpha/r)·B@A
   computed here; every targeted weight changed; every other tensor (LM head, embedding, norms, Dream's
   q/k/v biases) is bit-identical to the base.
6. Run the `--check-saved` check below on each folder just written.

    /opt/venv/bin/python scripts/make_lora_fixture.py

Check an adapter folder written by another program (same PEFT format) against base `<name>`:

    /opt/venv/bin/python scripts/make_lora_fixture.py --check-saved DIR --like llada_f32   # or dream_gqa

It prints adapter_config.json and the key names, shapes and dtypes of adapter_model.safetensors, loads
the folder onto a fresh module tree of `<name>` the way `peft.PeftModel.from_pretrained` does
(`PeftConfig.from_pretrained`, `PeftModel(model, config)`, `load_adapter`, which returns the load result
that from_pretrained only warns about), and reports missing / unexpected keys two ways: PEFT's load result,
and the file's key set against the key set `save_pretrained` writes for that config on that model. Any
mismatch (or a shape PEFT refuses) makes it print FAILED and exit 1. Then it merges and prints the max abs
difference of every merged tensor against `tests/fixtures/lora/<name>_peft/merged_reference.safetensors`.
If the adapter tensors are the fixture's (same keys, equal after casting to f32), that difference must be
at most 1e-6, or it fails; otherwise the difference is printed for information only. It ends with `OK`.

Versions used to write the committed files: Python 3.11.7, torch 2.15.0 (CPU use only; the PyPI wheel,
since the PyTorch CPU index was unreachable), peft 0.21.2, safetensors 0.8.0, numpy 2.4.6, and
transformers 4.57.0 (not used by this script, but peft imports it; 4.57.0 is the version pinned for the
other scripts in scripts/README.md, and peft 0.21.2 works with it).

Deterministic (fixed seed, one torch thread, safetensors sorts its keys): a second run writes the same bytes.
The script replaces only `tests/fixtures/lora/llada_f32_peft/` and `tests/fixtures/lora/dream_gqa_peft/`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings

# No Hub look-ups: with save_embedding_layers="auto" PEFT would ask the Hub whether
# base_model_name_or_path has a config.json.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import peft  # noqa: E402
from peft import LoraConfig, PeftConfig, PeftModel, get_peft_model, get_peft_model_state_dict  # noqa: E402
from peft.tuners.lora import LoraLayer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
LORA_DIR = os.path.join(FIXTURES, "lora")

SEED = 1234
INIT_STD = 0.05
R = 4
ALPHA = 8
SCALE = ALPHA / R  # PEFT's scaling for plain LoRA (use_rslora=False)
MERGE_TOL = 1e-6

LLADA_TARGET = r"model\.transformer\.blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)"
DREAM_TARGET = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

NAMES = ("llada_f32", "dream_gqa")


# --------------------------------------------------------------------------------------------------------
# Module trees that reproduce the checkpoints' tensor names.


class RMSNormWeight(nn.Module):
    """Holds the norm's `weight` Parameter only (no forward is needed here)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))


def _linear(tensors: dict, path: str, d_in: int, d_out: int) -> nn.Linear:
    # bias only where the checkpoint has one; load_state_dict(strict=True) checks the rest
    return nn.Linear(d_in, d_out, bias=f"{path}.bias" in tensors)


class LLaDABlock(nn.Module):
    def __init__(self, cfg: dict, tensors: dict, prefix: str):
        super().__init__()
        d = cfg["d_model"]
        hd = d // cfg["n_heads"]
        kv = (cfg.get("n_kv_heads") or cfg["n_heads"]) * hd
        mlp = cfg["mlp_hidden_size"]
        self.attn_norm = RMSNormWeight(d)
        self.q_proj = _linear(tensors, f"{prefix}.q_proj", d, d)
        self.k_proj = _linear(tensors, f"{prefix}.k_proj", d, kv)
        self.v_proj = _linear(tensors, f"{prefix}.v_proj", d, kv)
        self.attn_out = _linear(tensors, f"{prefix}.attn_out", d, d)
        self.ff_norm = RMSNormWeight(d)
        self.ff_proj = _linear(tensors, f"{prefix}.ff_proj", d, mlp)
        self.up_proj = _linear(tensors, f"{prefix}.up_proj", d, mlp)
        self.ff_out = _linear(tensors, f"{prefix}.ff_out", mlp, d)  # the block's down projection


class LLaDATransformer(nn.Module):
    def __init__(self, cfg: dict, tensors: dict):
        super().__init__()
        d = cfg["d_model"]
        vocab = cfg.get("embedding_size") or cfg["vocab_size"]
        self.wte = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(
            LLaDABlock(cfg, tensors, f"model.transformer.blocks.{i}") for i in range(cfg["n_layers"])
        )
        self.ln_f = RMSNormWeight(d)
        if not cfg.get("weight_tying", False):
            self.ff_out = _linear(tensors, "model.transformer.ff_out", d, vocab)  # the LM head


class LLaDAModel(nn.Module):
    def __init__(self, cfg: dict, tensors: dict):
        super().__init__()
        self.transformer = LLaDATransformer(cfg, tensors)


class LLaDAModelLM(nn.Module):
    def __init__(self, cfg: dict, tensors: dict):
        super().__init__()
        self.model = LLaDAModel(cfg, tensors)


class DreamAttention(nn.Module):
    def __init__(self, cfg: dict, tensors: dict, prefix: str):
        super().__init__()
        h = cfg["hidden_size"]
        hd = h // cfg["num_attention_heads"]
        kv = cfg["num_key_value_heads"] * hd
        self.q_proj = _linear(tensors, f"{prefix}.q_proj", h, cfg["num_attention_heads"] * hd)
        self.k_proj = _linear(tensors, f"{prefix}.k_proj", h, kv)
        self.v_proj = _linear(tensors, f"{prefix}.v_proj", h, kv)
        self.o_proj = _linear(tensors, f"{prefix}.o_proj", cfg["num_attention_heads"] * hd, h)


class DreamMLP(nn.Module):
    def __init__(self, cfg: dict, tensors: dict, prefix: str):
        super().__init__()
        h, m = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = _linear(tensors, f"{prefix}.gate_proj", h, m)
        self.up_proj = _linear(tensors, f"{prefix}.up_proj", h, m)
        self.down_proj = _linear(tensors, f"{prefix}.down_proj", m, h)


class DreamDecoderLayer(nn.Module):
    def __init__(self, cfg: dict, tensors: dict, prefix: str):
        super().__init__()
        h = cfg["hidden_size"]
        self.self_attn = DreamAttention(cfg, tensors, f"{prefix}.self_attn")
        self.mlp = DreamMLP(cfg, tensors, f"{prefix}.mlp")
        self.input_layernorm = RMSNormWeight(h)
        self.post_attention_layernorm = RMSNormWeight(h)


class DreamBaseModel(nn.Module):
    def __init__(self, cfg: dict, tensors: dict):
        super().__init__()
        h = cfg["hidden_size"]
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], h)
        self.layers = nn.ModuleList(
            DreamDecoderLayer(cfg, tensors, f"model.layers.{i}") for i in range(cfg["num_hidden_layers"])
        )
        self.norm = RMSNormWeight(h)


class DreamModel(nn.Module):
    def __init__(self, cfg: dict, tensors: dict):
        super().__init__()
        self.model = DreamBaseModel(cfg, tensors)
        if not cfg.get("tie_word_embeddings", False):
            self.lm_head = _linear(tensors, "lm_head", cfg["hidden_size"], cfg["vocab_size"])


ARCH = {
    "llada_f32": dict(cls=LLaDAModelLM, target=LLADA_TARGET,
                      lm_head="model.transformer.ff_out",
                      targeted=("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"),
                      block_prefix="model.transformer.blocks."),
    "dream_gqa": dict(cls=DreamModel, target=DREAM_TARGET,
                      lm_head="lm_head",
                      targeted=tuple(DREAM_TARGET),
                      block_prefix="model.layers."),
}


def load_base(name: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A fresh module tree for base `name` with every checkpoint tensor loaded (strict)."""
    d = os.path.join(FIXTURES, name)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    tensors = load_file(os.path.join(d, "model.safetensors"))
    model = ARCH[name]["cls"](cfg, tensors)
    sd_keys = set(model.state_dict().keys())
    if sd_keys != set(tensors):
        raise SystemExit(f"{name}: module tree does not match the checkpoint: "
                         f"tree-only {sorted(sd_keys - set(tensors))}, file-only {sorted(set(tensors) - sd_keys)}")
    with torch.no_grad():
        model.load_state_dict(tensors, strict=True)  # raises on any missing/unexpected key or shape mismatch
    for k, v in model.state_dict().items():
        assert v.dtype == tensors[k].dtype and torch.equal(v, tensors[k]), k
    model.requires_grad_(False)
    # get_peft_model copies this into LoraConfig.base_model_name_or_path
    model.name_or_path = f"../../{name}"
    return model, tensors


def expected_targets(name: str, tensors: dict) -> list[str]:
    a = ARCH[name]
    out = []
    for k in tensors:
        if not k.endswith(".weight") or not k.startswith(a["block_prefix"]):
            continue
        mod = k[: -len(".weight")]
        if mod.rsplit(".", 1)[1] in a["targeted"]:
            out.append(mod)
    return sorted(out)


# --------------------------------------------------------------------------------------------------------
# Generation


def _fmt_keys(tensors: dict) -> list[str]:
    return [f"  {k}  {list(v.shape)}  {str(v.dtype).replace('torch.', '')}" for k, v in sorted(tensors.items())]


def make(name: str) -> None:
    out = os.path.join(LORA_DIR, f"{name}_peft")
    if os.path.isdir(out):
        shutil.rmtree(out)
    model, base = load_base(name)
    config = LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, bias="none", target_modules=ARCH[name]["target"])
    pm = get_peft_model(model, config)

    # which modules got an adapter
    lora_modules = sorted(n.removeprefix("base_model.model.")
                          for n, m in pm.named_modules() if isinstance(m, LoraLayer))
    want = expected_targets(name, base)
    assert lora_modules == want, (lora_modules, want)
    lm_head = ARCH[name]["lm_head"]
    assert lm_head not in lora_modules
    assert type(pm.get_base_model().get_submodule(lm_head)) is nn.Linear, "LM head was wrapped"
    for n, m in pm.get_base_model().named_modules():
        if isinstance(m, (nn.Embedding, RMSNormWeight)):
            assert not isinstance(m, LoraLayer), n
    scaling = {m.scaling["default"] for m in pm.modules() if isinstance(m, LoraLayer)}
    assert scaling == {SCALE}, scaling

    # deterministic non-zero adapter weights
    gen = torch.Generator().manual_seed(SEED)
    n_set = 0
    with torch.no_grad():
        for pname, p in pm.named_parameters():
            if ".lora_A." in pname or ".lora_B." in pname:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * INIT_STD)
                n_set += 1
    assert n_set == 2 * len(want), n_set

    # save_embedding_layers=False: no embedding is targeted, so "auto" would also save none, but "auto"
    # first looks for base_model_name_or_path/config.json (relative to the cwd) and then on the Hub.
    pm.save_pretrained(out, save_embedding_layers=False)
    card = os.path.join(out, "README.md")
    if os.path.exists(card):
        os.remove(card)
    assert sorted(os.listdir(out)) == ["adapter_config.json", "adapter_model.safetensors"], os.listdir(out)
    cfg_path = os.path.join(out, "adapter_config.json")
    with open(cfg_path) as f:
        written = f.read()
    saved_cfg = json.loads(written)
    # PEFT stores a list target as a set and writes list(set): the order follows Python's per-process
    # string-hash seed. Sort it so the file is byte-stable; the rest stays exactly as PEFT wrote it
    # (json.dumps(indent=2, sort_keys=True), checked by re-dumping the unmodified dict).
    assert json.dumps(saved_cfg, indent=2, sort_keys=True) == written, "unexpected adapter_config.json format"
    if isinstance(saved_cfg["target_modules"], list):
        saved_cfg["target_modules"] = sorted(saved_cfg["target_modules"])
        with open(cfg_path, "w") as f:
            f.write(json.dumps(saved_cfg, indent=2, sort_keys=True))
    assert saved_cfg["base_model_name_or_path"] == f"../../{name}", saved_cfg["base_model_name_or_path"]
    assert saved_cfg["peft_type"] == "LORA" and saved_cfg["r"] == R and saved_cfg["lora_alpha"] == ALPHA
    assert saved_cfg["use_rslora"] is False and saved_cfg["use_dora"] is False
    target = ARCH[name]["target"]
    assert saved_cfg["target_modules"] == (target if isinstance(target, str) else sorted(target)), \
        saved_cfg["target_modules"]
    adapter = load_file(os.path.join(out, "adapter_model.safetensors"))
    assert set(adapter) == {f"base_model.model.{m}.lora_{ab}.weight" for m in want for ab in "AB"}, sorted(adapter)

    # merge with PEFT and check against W + scale * B @ A computed here
    merged_model = pm.merge_and_unload()
    merged = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in merged_model.state_dict().items()}
    assert set(merged) == set(base), (sorted(set(merged) ^ set(base)))
    targeted_w = {f"{m}.weight" for m in want}
    for k, w in base.items():
        if k in targeted_w:
            m = k[: -len(".weight")]
            a = adapter[f"base_model.model.{m}.lora_A.weight"]
            b = adapter[f"base_model.model.{m}.lora_B.weight"]
            assert a.shape == (R, w.shape[1]) and b.shape == (w.shape[0], R), (k, a.shape, b.shape)
            manual = w + SCALE * (b @ a)
            assert not torch.equal(merged[k], w), f"{k}: merge did not change a targeted weight"
            d = (merged[k] - manual).abs().max().item()
            assert d <= MERGE_TOL, (k, d)
        else:
            assert merged[k].dtype == w.dtype and torch.equal(merged[k], w), f"{k}: non-targeted tensor changed"
    save_file(dict(sorted(merged.items())), os.path.join(out, "merged_reference.safetensors"),
              metadata={"format": "pt"})

    print(f"== wrote {out}: {len(want)} LoRA modules, scale alpha/r = {ALPHA}/{R} = {SCALE}; "
          f"LM head {lm_head!r} has no adapter")
    print(f"merged_reference.safetensors: {len(merged)} tensors; changed: {len(targeted_w)}, "
          f"bit-identical to base: {len(merged) - len(targeted_w)}")


# --------------------------------------------------------------------------------------------------------
# Check an adapter folder written elsewhere


def check_saved(dir_: str, like: str) -> bool:
    problems: list[str] = []
    cfg_path = os.path.join(dir_, "adapter_config.json")
    st_path = os.path.join(dir_, "adapter_model.safetensors")
    for p in (cfg_path, st_path):
        if not os.path.isfile(p):
            print(f"FAILED: {p} is missing")
            return False
    print(f"== check {dir_} against base {like}")
    with open(cfg_path) as f:
        raw_cfg = f.read()
    print("adapter_config.json:")
    print(raw_cfg)
    with safe_open(st_path, "pt") as f:
        meta = f.metadata()
    if (meta or {}).get("format") != "pt":
        problems.append(f"adapter_model.safetensors metadata is {meta}, expected format: pt")
    file_tensors = load_file(st_path)
    print("adapter_model.safetensors keys:")
    print("\n".join(_fmt_keys(file_tensors)))

    config = PeftConfig.from_pretrained(dir_)
    if not isinstance(config, LoraConfig):
        print(f"FAILED: peft_type is {config.peft_type}, expected LORA")
        return False
    print(f"scale lora_alpha/r = {config.lora_alpha}/{config.r} = {config.lora_alpha / config.r}"
          f"{' (use_rslora: alpha/sqrt(r) instead)' if config.use_rslora else ''}")

    model, base = load_base(like)
    # what PeftModel.from_pretrained(model, dir_) does, keeping the load result it only warns about
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm = PeftModel(model, config, "default")
        try:
            res = pm.load_adapter(dir_, "default", is_trainable=False)
        except RuntimeError as e:  # size mismatch
            print(f"FAILED: PEFT refused the tensors: {e}")
            return False
    for w in caught:
        print(f"warning: {w.message}")
    lora_modules = sorted(n.removeprefix("base_model.model.")
                          for n, m in pm.named_modules() if isinstance(m, LoraLayer))
    print(f"modules with an adapter ({len(lora_modules)}): {lora_modules}")
    if ARCH[like]["lm_head"] in lora_modules:
        problems.append(f"target_modules put an adapter on the LM head {ARCH[like]['lm_head']}")

    # 1) PEFT's own load result
    print(f"PEFT load_adapter: missing_keys {sorted(res.missing_keys)}, unexpected_keys {sorted(res.unexpected_keys)}")
    if res.missing_keys:
        problems.append(f"PEFT missing keys: {sorted(res.missing_keys)}")
    if res.unexpected_keys:
        problems.append(f"PEFT unexpected keys: {sorted(res.unexpected_keys)}")
    # 2) the file's keys against what save_pretrained writes for this config on this model
    expected = get_peft_model_state_dict(pm, adapter_name="default", save_embedding_layers=False)
    missing = sorted(set(expected) - set(file_tensors))
    unexpected = sorted(set(file_tensors) - set(expected))
    print(f"missing keys (vs save_pretrained's key set): {missing}")
    print(f"unexpected keys (vs save_pretrained's key set): {unexpected}")
    if missing:
        problems.append(f"missing keys: {missing}")
    if unexpected:
        problems.append(f"unexpected keys: {unexpected}")
    for k in sorted(set(expected) & set(file_tensors)):
        if tuple(expected[k].shape) != tuple(file_tensors[k].shape):
            problems.append(f"{k}: shape {list(file_tensors[k].shape)}, expected {list(expected[k].shape)}")
        elif not torch.equal(expected[k], file_tensors[k].to(expected[k].dtype)):
            problems.append(f"{k}: the loaded value differs from the file")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return False

    # merge and compare with the fixture's reference
    merged = {k: v.detach().to(torch.float32) for k, v in pm.merge_and_unload().state_dict().items()}
    fixture_dir = os.path.join(LORA_DIR, f"{like}_peft")
    ref = load_file(os.path.join(fixture_dir, "merged_reference.safetensors"))
    fixture_adapter = load_file(os.path.join(fixture_dir, "adapter_model.safetensors"))
    same_adapter = set(fixture_adapter) == set(file_tensors) and all(
        torch.equal(fixture_adapter[k], file_tensors[k].to(torch.float32)) for k in fixture_adapter)
    if set(merged) != set(ref):
        print(f"FAILED: merged names differ from the reference: {sorted(set(merged) ^ set(ref))}")
        return False
    diffs = {k: (merged[k] - ref[k]).abs().max().item() for k in sorted(ref)}
    worst = max(diffs, key=diffs.get)
    print(f"adapter tensors are the fixture's: {same_adapter}")
    print(f"max abs diff, merged vs merged_reference.safetensors: {diffs[worst]:.3e} ({worst})")
    if same_adapter and diffs[worst] > MERGE_TOL:
        print(f"FAILED: merged weights differ from the reference by more than {MERGE_TOL}")
        return False
    if not same_adapter:
        print("(adapter differs from the fixture's, so the difference above is information only)")
    print("OK")
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--check-saved", metavar="DIR", help="check an adapter folder written elsewhere")
    ap.add_argument("--like", choices=NAMES, help="base checkpoint for --check-saved")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, peft {peft.__version__}, safetensors "
          f"{__import__('safetensors').__version__}")
    if args.check_saved:
        if not args.like:
            ap.error("--check-saved needs --like NAME")
        sys.exit(0 if check_saved(args.check_saved, args.like) else 1)

    os.makedirs(LORA_DIR, exist_ok=True)
    for name in NAMES:
        make(name)
    ok = all(check_saved(os.path.join(LORA_DIR, f"{n}_peft"), n) for n in NAMES)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
