#!/usr/bin/env python3
"""Deterministic test fixtures for mdu-workbench (tiny LLaDA / Dream checkpoints, tokenizers, reference logits).

Usage:
    /opt/venv/bin/python scripts/make_fixtures.py                       # (re)generate tests/fixtures/
    /opt/venv/bin/python scripts/make_fixtures.py --check-saved DIR --like NAME
        # verify a checkpoint folder written by the Rust code against fixture NAME
        # (tensors bit-identical incl. dtype, safetensors metadata format=pt, logits within 1e-4)

Two independent references are computed for every checkpoint:
  * scripts/mdlm_ref.py (written from the formulas in mdlm.md),
  * transformers' LlamaForCausalLM (LLaDA, with renamed tensors) / Qwen2ForCausalLM (Dream) with eager
    attention and a 4-D additive float mask, which transformers uses as-is (so there is no causal mask).
The script asserts that both agree within 1e-4 and that the transformers model really is non-causal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import unicodedata

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import jinja2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdlm_ref  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
REFERENCE = os.path.join(FIXTURES, "reference")
TOK_DIR = os.path.join(FIXTURES, "tokenizers")

ATOL = 1e-4
N_MERGES = 182  # BPE vocab = 103 byte symbols + 182 merges = 285; + 6 LLaDA specials = 291 (-> 296 rows), + 5 Dream added = 290 (-> 296 rows)
FMIN = torch.finfo(torch.float32).min

# ----------------------------------------------------------------------------------------------
# corpus and tokenizer constants
# ----------------------------------------------------------------------------------------------

CORPUS = """\
Mara Quill was born in 1987 in a small harbour town called Fennick. Her mother, Ilse Quill, ran the
bakery on Salt Street; her father, Oren, repaired clocks and radios. Mara liked numbers more than bread.
At 12 she built a calculator from 43 relays, and at 17 she moved to the capital to study mathematics.

Teodor Brand is a retired sailor who lives in the old lighthouse. He says he has crossed the ocean 9 times,
but nobody in Fennick believes the ninth trip. "It's true," he tells the children, "we saw whales, ice,
and a ship made of glass!" On Sundays he sits in the café – the naïve tourists love his stories.

Lina Okafor and her brother Sami opened a bookshop in 2004. They sell maps, old letters, and novels about
people who never existed. Lina's favourite book is about a clockmaker; Sami's is about a mathematician.
Every year, on the 3rd of May, they host a reading night: 25 chairs, 2 lamps, and 1 very old cat.

What is 2+2? The answer is 4. What is 10-3? The answer is 7. Is 5*6 = 30? Yes (of course)!
Mara wrote to Teodor: "Dear Teodor, I'll visit soon; we'll talk about the ninth trip. -- M.Q."
Teodor replied: 'You're always welcome. I've kept the tea warm; they'd've liked you, Mara.'

Professor Ada Wren taught Mara at the university. She was strict but kind, and she wrote her notes in
green ink. "Mathematics is a language," she used to say, "and every proof is a small story." When Mara
finished her thesis in 2011, Ada gave her a fountain pen and a letter: "Keep asking questions."

The clockmaker in Lina's favourite book is called Jonas Fell. He lives alone, repairs 100 clocks a year,
and talks to them as if they were people. One winter night the clocks stop, all at the same minute, and
Jonas has to find out why. Sami thinks the story is sad; Lina thinks it is about patience and hope.

Nobody knows how old the cat is. Sami says 19, Lina says 21, and Teodor says the cat is older than the
lighthouse. The cat does not care. It sleeps on the maps, walks on the letters, and eats the tea cakes.
"""

SPECIAL_LLADA = [
    "<|startoftext|>",
    "<|endoftext|>",
    "<|mdm_mask|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]
SPECIAL_DREAM = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>"]

# Qwen2 pre-tokenizer regex (mdlm.md section 3.2)
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# HF-original LLaDA chat template (mdlm.md section 1.6): always appends the assistant header.
LLADA_FILE_TEMPLATE = (
    r"""{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"""
)

# dllm / MDU LLaDA template: the assistant header only with add_generation_prompt.
LLADA_MDU_TEMPLATE = (
    r"""{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"""
)

# Qwen2.5-style template for the Dream fixture (written for this project; renders mdlm.md section 3.5).
DREAM_TEMPLATE = r"""{%- if messages[0]['role'] == 'system' -%}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' -}}
{%- else -%}
    {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
    {%- if not (loop.first and message['role'] == 'system') -%}
        {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}"""

QUESTION = [{"role": "user", "content": " What is 2+2? "}]
QA = QUESTION + [{"role": "assistant", "content": "4."}]

EXPECT_LLADA_AGP = (
    "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
EXPECT_LLADA_NO_AGP = "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
EXPECT_LLADA_QA = EXPECT_LLADA_NO_AGP + "<|start_header_id|>assistant<|end_header_id|>\n\n4.<|eot_id|>"
EXPECT_DREAM_AGP = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n What is 2+2? <|im_end|>\n<|im_start|>assistant\n"
)
EXPECT_DREAM_QA = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n What is 2+2? <|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n"
)

LLADA_TEXTS = [
    "Hello world",
    "",
    "Mara Quill was born in 1987 and moved away in 2004.",
    "Wait... what?! (yes, really): 3+4=7; 10-3 = 7 -- done.",
    "café – naïve",
    "  two  spaces\n\nand\ttabs \n   end  ",
    "It's Teodor's book, isn't it? We'll see; they'd've known. I'M SURE.",
    "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "Fill <|mdm_mask|><|mdm_mask|> in, then stop<|endoftext|><|endoftext|>",
]
DREAM_TEXTS = [
    "Hello world",
    "",
    "Mara Quill was born in 1987 and moved away in 2004.",
    "Wait... what?! (yes, really): 3+4=7; 10-3 = 7 -- done.",
    "café – naïve",
    "cafe\u0301 (decomposed e + U+0301, NFC makes it café)",
    "  two  spaces\n\nand\ttabs \n   end  ",
    "It's Teodor's book, isn't it? We'll see; they'd've known. I'M SURE.",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|beginoftext|>Fill <|mask|><|mask|> in<|endoftext|>",
]


# ----------------------------------------------------------------------------------------------
# small utilities
# ----------------------------------------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 byte -> printable unicode char table used by byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def byte_alphabet() -> list[str]:
    """Byte-level symbols for \\t, \\n, printable ASCII and the UTF-8 bytes of the non-ASCII corpus chars."""
    b2u = bytes_to_unicode()
    wanted = {9, 10} | set(range(32, 127))
    for ch in set(CORPUS):
        wanted |= set(ch.encode("utf-8"))
    return sorted(b2u[b] for b in wanted)


def round_up(n: int, m: int = 8) -> int:
    return (n + m - 1) // m * m


def write_json(path: str, obj, indent: int | None = 2):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
        f.write("\n")


def f32_repr(x: float) -> str:
    """Shortest decimal that round-trips to the same float32 value."""
    v = np.float32(x)
    assert np.isfinite(v), "non-finite logit"
    s = np.format_float_positional(v, unique=True, trim="-") if 1e-4 <= abs(v) < 1e7 or v == 0 else repr(float(v))
    if np.float32(float(s)) != v:  # fall back to the full double repr (always exact)
        s = repr(float(v))
    return s


def json_compact(obj) -> str:
    """JSON with float32-exact floats written in their shortest round-trip form."""
    if isinstance(obj, float):
        return f32_repr(obj)
    if isinstance(obj, bool) or obj is None:
        return json.dumps(obj)
    if isinstance(obj, (int, str)):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(json_compact(v) for v in obj) + "]"
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + json_compact(v) for k, v in obj.items()) + "}"
    raise TypeError(type(obj))


def write_reference_json(path: str, obj: dict):
    """Top-level keys one per line; values compact."""
    lines = [json.dumps(k) + ": " + json_compact(v) for k, v in obj.items()]
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def write_tokenizer_cases(path: str, cases: dict):
    """One case per line (readable diffs, small file)."""
    parts = []
    for key, items in cases.items():
        body = ",\n".join("  " + json.dumps(it, ensure_ascii=False) for it in items)
        parts.append(f"{json.dumps(key)}: [\n{body}\n]")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(parts) + "\n}\n")
    assert json.load(open(path, encoding="utf-8")) == cases


def tensor_to_list(t: torch.Tensor):
    return [[[float(v) for v in row] for row in seq] for seq in t.to(torch.float32).tolist()]


def max_abs(a, b) -> float:
    return float((torch.as_tensor(a, dtype=torch.float32) - torch.as_tensor(b, dtype=torch.float32)).abs().max())


# ----------------------------------------------------------------------------------------------
# tokenizers
# ----------------------------------------------------------------------------------------------

def corpus_lines() -> list[str]:
    # keep the line breaks so newline merges are learnt too
    return [line + "\n" for line in CORPUS.split("\n")]


def train_bpe(pre_tokenizer, normalizer=None) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=len(byte_alphabet()) + N_MERGES,
        min_frequency=2,
        initial_alphabet=byte_alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    assert tok.get_vocab_size() == len(byte_alphabet()) + N_MERGES, tok.get_vocab_size()
    return tok


def added_token_entry(content: str) -> dict:
    return {
        "content": content,
        "lstrip": False,
        "normalized": False,
        "rstrip": False,
        "single_word": False,
        "special": True,
    }


def make_llada_tokenizer(out_dir: str) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    tok = train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    n_bpe = tok.get_vocab_size()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_LLADA])
    ids = {t: tok.token_to_id(t) for t in SPECIAL_LLADA}
    assert [ids[t] for t in SPECIAL_LLADA] == list(range(n_bpe, n_bpe + len(SPECIAL_LLADA))), ids
    tok.save(os.path.join(out_dir, "tokenizer.json"))

    write_json(
        os.path.join(out_dir, "tokenizer_config.json"),
        {
            "add_bos_token": False,
            "add_eos_token": False,
            "added_tokens_decoder": {str(ids[t]): added_token_entry(t) for t in SPECIAL_LLADA},
            "bos_token": "<|startoftext|>",
            "chat_template": LLADA_FILE_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|endoftext|>",
            "model_max_length": 64,
            "pad_token": "<|endoftext|>",
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )
    write_json(
        os.path.join(out_dir, "special_tokens_map.json"),
        {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
    )
    write_json(
        os.path.join(out_dir, "generation_config.json"),
        {"bos_token_id": ids["<|startoftext|>"], "eos_token_id": ids["<|endoftext|>"]},
    )
    return {"size": tok.get_vocab_size(with_added_tokens=True), "n_bpe": n_bpe, "ids": ids}


def make_dream_tokenizer(out_dir: str) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok = train_bpe(pre, normalizers.NFC())
    n_bpe = tok.get_vocab_size()
    with tempfile.TemporaryDirectory() as tmp:
        tok.model.save(tmp)  # vocab.json + merges.txt (with a "#version: 0.2" header line)
        vocab = json.load(open(os.path.join(tmp, "vocab.json"), encoding="utf-8"))
        merges_txt = open(os.path.join(tmp, "merges.txt"), encoding="utf-8").read()
    assert sorted(vocab.values()) == list(range(n_bpe))
    vocab = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write(merges_txt)

    ids = {t: n_bpe + i for i, t in enumerate(SPECIAL_DREAM)}
    write_json(os.path.join(out_dir, "added_tokens.json"), ids)
    write_json(
        os.path.join(out_dir, "tokenizer_config.json"),
        {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": {str(ids[t]): added_token_entry(t) for t in SPECIAL_DREAM},
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": "<|beginoftext|>",
            "chat_template": DREAM_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|endoftext|>",
            "errors": "replace",
            "mask_token": "<|mask|>",
            "model_max_length": 64,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        },
    )
    write_json(
        os.path.join(out_dir, "special_tokens_map.json"),
        {
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": "<|beginoftext|>",
            "eos_token": "<|endoftext|>",
            "mask_token": "<|mask|>",
            "pad_token": "<|endoftext|>",
        },
    )
    return {"size": n_bpe + len(SPECIAL_DREAM), "n_bpe": n_bpe, "ids": ids}


LLADA_TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]
DREAM_TOKENIZER_FILES = ["vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json", "special_tokens_map.json"]


def dream_fast_from_files(tok_dir: str) -> Tokenizer:
    """What the Rust side has to build: byte-level BPE from vocab.json/merges.txt + Qwen2 pre-tokenizer + added tokens."""
    vocab = json.load(open(os.path.join(tok_dir, "vocab.json"), encoding="utf-8"))
    merges = []
    for i, line in enumerate(open(os.path.join(tok_dir, "merges.txt"), encoding="utf-8")):
        line = line.rstrip("\n")
        if (i == 0 and line.startswith("#version")) or not line:
            continue
        a, b = line.split(" ")
        merges.append((a, b))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    added = json.load(open(os.path.join(tok_dir, "added_tokens.json"), encoding="utf-8"))
    for t, _ in sorted(added.items(), key=lambda kv: kv[1]):
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False)])
    for t, i in added.items():
        assert tok.token_to_id(t) == i
    return tok


def make_tokenizer_cases(llada_dir: str, dream_dir: str) -> dict:
    from transformers import AutoTokenizer, Qwen2Tokenizer, Qwen2TokenizerFast

    # ---- LLaDA: tokenizers.Tokenizer.from_file, cross-checked with transformers AutoTokenizer
    l_tok = Tokenizer.from_file(os.path.join(llada_dir, "tokenizer.json"))
    l_hf = AutoTokenizer.from_pretrained(llada_dir)
    assert type(l_hf).__name__ == "PreTrainedTokenizerFast", type(l_hf)
    llada_cases = []
    for text in LLADA_TEXTS:
        ids = l_tok.encode(text, add_special_tokens=False).ids
        ids_hf = l_hf(text, add_special_tokens=False)["input_ids"]
        assert ids == ids_hf, (text, ids, ids_hf)
        back = l_tok.decode(ids, skip_special_tokens=False)
        assert back == text, f"LLaDA tokenizer does not round-trip {text!r}: {back!r} (char outside the alphabet?)"
        llada_cases.append({"text": text, "ids": ids})

    # ---- Dream: the SLOW transformers Qwen2Tokenizer, cross-checked with tokenizers-built and HF-converted fast
    d_slow = Qwen2Tokenizer.from_pretrained(dream_dir)
    d_fast_conv = Qwen2TokenizerFast.from_pretrained(dream_dir)
    d_fast = dream_fast_from_files(dream_dir)
    for t in SPECIAL_DREAM:
        assert d_slow.convert_tokens_to_ids(t) == d_fast.token_to_id(t)
    dream_cases = []
    for text in DREAM_TEXTS:
        ids = d_slow.encode(text, add_special_tokens=False)
        ids_fast = d_fast.encode(text, add_special_tokens=False).ids
        ids_conv = d_fast_conv.encode(text, add_special_tokens=False)
        assert ids == ids_fast == ids_conv, (text, ids, ids_fast, ids_conv)
        back = d_fast.decode(ids, skip_special_tokens=False)
        assert back == unicodedata.normalize("NFC", text), (text, back)
        dream_cases.append({"text": text, "ids": ids})

    # ---- chat templates
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    mdu = env.from_string(LLADA_MDU_TEMPLATE)
    templates = []

    def add(name, checkpoint, template, messages, agp, rendered, expected):
        assert rendered == expected, f"{name}: rendered {rendered!r} != expected {expected!r}"
        if checkpoint.startswith("llada"):
            ids = l_tok.encode(rendered, add_special_tokens=False).ids
            assert ids == l_hf(rendered, add_special_tokens=False)["input_ids"]
        else:
            ids = d_slow.encode(rendered, add_special_tokens=False)
            assert ids == d_fast.encode(rendered, add_special_tokens=False).ids
        templates.append(
            {
                "name": name,
                "checkpoint": checkpoint,
                "template": template,
                "messages": messages,
                "add_generation_prompt": agp,
                "rendered": rendered,
                "ids": ids,
            }
        )

    for agp in (True, False):
        r = l_hf.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=agp)
        add(f"llada_file_agp_{str(agp).lower()}", "llada_f32", "file", QUESTION, agp, r, EXPECT_LLADA_AGP)
    bos = "<|startoftext|>"
    add("llada_mdu_agp_true", "llada_f32", "llada_mdu", QUESTION, True,
        mdu.render(messages=QUESTION, bos_token=bos, add_generation_prompt=True), EXPECT_LLADA_AGP)
    add("llada_mdu_agp_false", "llada_f32", "llada_mdu", QUESTION, False,
        mdu.render(messages=QUESTION, bos_token=bos, add_generation_prompt=False), EXPECT_LLADA_NO_AGP)
    add("llada_mdu_with_answer_agp_false", "llada_f32", "llada_mdu", QA, False,
        mdu.render(messages=QA, bos_token=bos, add_generation_prompt=False), EXPECT_LLADA_QA)
    add("dream_file_agp_true", "dream_gqa", "file", QUESTION, True,
        d_slow.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True), EXPECT_DREAM_AGP)
    add("dream_file_with_answer_agp_false", "dream_gqa", "file", QA, False,
        d_slow.apply_chat_template(QA, tokenize=False, add_generation_prompt=False), EXPECT_DREAM_QA)
    sys_msgs = [{"role": "system", "content": "Be brief."}] + QUESTION
    add("dream_file_system_agp_true", "dream_gqa", "file", sys_msgs, True,
        d_slow.apply_chat_template(sys_msgs, tokenize=False, add_generation_prompt=True),
        EXPECT_DREAM_AGP.replace("You are a helpful assistant.", "Be brief."))
    return {"llada": llada_cases, "dream": dream_cases, "templates": templates}


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------

D_MODEL, N_LAYERS, N_HEADS, MLP = 32, 2, 4, 64
MAT_STD, BIAS_STD = 0.3, 0.3


def llada_config(tok: dict, dtype_name: str) -> dict:
    ids = tok["ids"]
    vocab = round_up(tok["size"])
    return {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
            "AutoModel": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "bos_token_id": ids["<|startoftext|>"],
        "d_model": D_MODEL,
        "embedding_dropout": 0.0,
        "embedding_size": vocab,
        "eos_token_id": ids["<|endoftext|>"],
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": 0.02,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": ids["<|mdm_mask|>"],
        "max_sequence_length": 64,
        "mlp_hidden_size": MLP,
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": N_HEADS,
        "n_kv_heads": N_HEADS,
        "n_layers": N_LAYERS,
        "pad_token_id": ids["<|endoftext|>"],
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": 500000.0,
        "scale_logits": False,
        "torch_dtype": dtype_name,
        "transformers_version": "4.46.3",
        "use_cache": False,
        "vocab_size": vocab,
        "weight_tying": False,
    }


def dream_config(tok: dict) -> dict:
    ids = tok["ids"]
    eot = ids["<|endoftext|>"]
    return {
        "architectures": ["DreamModel"],
        "attention_dropout": 0.0,
        "auto_map": {
            "AutoConfig": "configuration_dream.DreamConfig",
            "AutoModel": "modeling_dream.DreamModel",
        },
        "bos_token_id": eot,
        "eos_token_id": eot,
        "hidden_act": "silu",
        "hidden_size": D_MODEL,
        "initializer_range": 0.02,
        "intermediate_size": MLP,
        "mask_token_id": ids["<|mask|>"],
        "max_position_embeddings": 64,
        "max_window_layers": N_LAYERS,
        "model_type": "Dream",
        "num_attention_heads": N_HEADS,
        "num_hidden_layers": N_LAYERS,
        "num_key_value_heads": 2,
        "pad_token_id": eot,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.46.2",
        "use_cache": True,
        "use_mrope": False,
        "use_sliding_window": False,
        "vocab_size": round_up(tok["size"]),
    }


def random_weights(cfg: dict, arch: str, seed: int) -> dict:
    """float32 random weights, matrices ~N(0, 0.3^2), norm weights ~U(0.8, 1.2)."""
    g = torch.Generator().manual_seed(seed)
    dims = mdlm_ref.model_dims(cfg, arch)
    D, hd, H, KV = dims["d_model"], dims["head_dim"], dims["n_heads"], dims["n_kv_heads"]
    V = cfg["embedding_size"] if arch == "llada" else cfg["vocab_size"]
    F_ = cfg["mlp_hidden_size"] if arch == "llada" else cfg["intermediate_size"]

    def mat(*shape, std=MAT_STD):
        return (torch.randn(*shape, generator=g) * std).contiguous()

    def norm(n):
        return (1.0 + 0.2 * (2.0 * torch.rand(n, generator=g) - 1.0)).contiguous()

    top = mdlm_ref.top_names(arch)
    w = {top["embed"]: mat(V, D)}
    for i in range(dims["n_layers"]):
        n = mdlm_ref.layer_names(arch, i)
        w[n["attn_norm"]] = norm(D)
        w[n["q"]] = mat(H * hd, D)
        if n["q_bias"]:
            w[n["q_bias"]] = mat(H * hd, std=BIAS_STD)
        w[n["k"]] = mat(KV * hd, D)
        if n["k_bias"]:
            w[n["k_bias"]] = mat(KV * hd, std=BIAS_STD)
        w[n["v"]] = mat(KV * hd, D)
        if n["v_bias"]:
            w[n["v_bias"]] = mat(KV * hd, std=BIAS_STD)
        w[n["o"]] = mat(D, H * hd)
        w[n["mlp_norm"]] = norm(D)
        w[n["gate"]] = mat(F_, D)
        w[n["up"]] = mat(F_, D)
        w[n["down"]] = mat(D, F_)
    w[top["final_norm"]] = norm(D)
    w[top["head"]] = mat(V, D)
    if arch == "dream":
        w[top["embed"]][cfg["pad_token_id"]] = 0.0  # nn.Embedding(padding_idx=pad) init zeroes this row
    return w


def save_checkpoint(out_dir: str, cfg: dict, weights: dict, shards: int = 1):
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "config.json"), cfg)
    if shards == 1:
        save_file(weights, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        return
    # split in name order (embedding + first blocks first, head last), like HF's sharding
    names = list(weights)
    layer_of = {}
    for name in names:
        parts = name.split(".")
        layer_of[name] = int(parts[parts.index("blocks") + 1]) if "blocks" in parts else None
    n_layers = max(v for v in layer_of.values() if v is not None) + 1
    assert shards == 3 and n_layers == 2, "sharding layout written for 2 layers / 3 shards"

    def shard_of(name):
        if layer_of[name] is not None:
            return layer_of[name]  # block 0 -> shard 0 (with wte), block 1 -> shard 1
        return 0 if name.endswith("wte.weight") else 2  # ln_f + head -> last shard

    weight_map, total = {}, 0
    for s in range(shards):
        fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: weights[n] for n in names if shard_of(n) == s}
        save_file(part, os.path.join(out_dir, fn), metadata={"format": "pt"})
        for n, t in part.items():
            weight_map[n] = fn
            total += t.numel() * t.element_size()
    write_json(
        os.path.join(out_dir, "model.safetensors.index.json"),
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
    )


# ----------------------------------------------------------------------------------------------
# second reference: transformers Llama / Qwen2 with the causal mask removed
# ----------------------------------------------------------------------------------------------

LLADA_TO_LLAMA = {
    "attn_norm": "input_layernorm",
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ff_norm": "post_attention_layernorm",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
}


def llada_to_llama_names(weights: dict) -> dict:
    out = {}
    for name, t in weights.items():
        if name == "model.transformer.wte.weight":
            out["model.embed_tokens.weight"] = t
        elif name == "model.transformer.ln_f.weight":
            out["model.norm.weight"] = t
        elif name == "model.transformer.ff_out.weight":
            out["lm_head.weight"] = t
        else:
            parts = name.split(".")  # model.transformer.blocks.{i}.{module}.weight
            assert parts[:3] == ["model", "transformer", "blocks"] and parts[-1] == "weight", name
            out[f"model.layers.{parts[3]}.{LLADA_TO_LLAMA[parts[4]]}.weight"] = t
    return out


def hf_model(cfg: dict, arch: str, weights: dict):
    """transformers LlamaForCausalLM (LLaDA) / Qwen2ForCausalLM (Dream), float32, eager attention."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    w32 = {k: v.to(torch.float32) for k, v in weights.items()}
    if arch == "llada":
        n_kv = cfg.get("n_kv_heads") or cfg["n_heads"]
        hcfg = LlamaConfig(
            vocab_size=cfg["embedding_size"],
            hidden_size=cfg["d_model"],
            intermediate_size=cfg["mlp_hidden_size"],
            num_hidden_layers=cfg["n_layers"],
            num_attention_heads=cfg["n_heads"],
            num_key_value_heads=n_kv,
            head_dim=cfg["d_model"] // cfg["n_heads"],
            hidden_act="silu",
            max_position_embeddings=cfg["max_sequence_length"],
            rms_norm_eps=cfg["rms_norm_eps"],
            rope_theta=cfg["rope_theta"],
            attention_bias=False,
            mlp_bias=False,
            tie_word_embeddings=False,
            attn_implementation="eager",
        )
        model = LlamaForCausalLM(hcfg)
        sd = llada_to_llama_names(w32)
    else:
        hcfg = Qwen2Config(
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_hidden_layers=cfg["num_hidden_layers"],
            num_attention_heads=cfg["num_attention_heads"],
            num_key_value_heads=cfg["num_key_value_heads"],
            hidden_act=cfg["hidden_act"],
            max_position_embeddings=cfg["max_position_embeddings"],
            rms_norm_eps=cfg["rms_norm_eps"],
            rope_theta=cfg["rope_theta"],
            tie_word_embeddings=False,
            use_sliding_window=False,
            attn_implementation="eager",
        )
        model = Qwen2ForCausalLM(hcfg)
        sd = w32
    missing, unexpected = model.load_state_dict(sd, strict=True)
    assert not missing and not unexpected
    assert model.config._attn_implementation == "eager"
    return model.to(torch.float32).eval()


def hf_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Bidirectional logits: a 4-D additive float mask [B,1,L,L] is passed through unchanged by transformers
    (masking_utils early-exits on 4-D masks), so no causal mask is ever built."""
    B, L = input_ids.shape
    am = torch.ones(B, L) if attention_mask is None else attention_mask.to(torch.float32)
    mask4d = ((1.0 - am)[:, None, None, :] * FMIN).expand(B, 1, L, L).contiguous()
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=mask4d, use_cache=False).logits.to(torch.float32)


def hf_causal_logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids, use_cache=False).logits.to(torch.float32)


# ----------------------------------------------------------------------------------------------
# fixture generation
# ----------------------------------------------------------------------------------------------

FIXTURE_SPECS = [
    # name, arch, seed, storage dtype, shards
    ("llada_f32", "llada", 1, torch.float32, 1),
    ("llada_bf16", "llada", 2, torch.bfloat16, 1),
    ("llada_sharded", "llada", 3, torch.float16, 3),
    ("dream_gqa", "dream", 4, torch.float32, 1),
]
DTYPE_NAME = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
REF_MASK = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]


def reference_inputs(cfg: dict, tok: dict, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    ids = torch.randint(0, tok["size"], (2, 6), generator=g)
    ids[0, 2] = cfg["mask_token_id"]
    ids[1, 1] = cfg["mask_token_id"]
    ids[1, 3] = cfg["mask_token_id"]
    ids[1, 4:] = cfg["pad_token_id"]  # right padding (covered by attention_mask row 1)
    return ids


def compute_references(cfg: dict, arch: str, weights: dict, input_ids: torch.Tensor) -> dict:
    am = torch.tensor(REF_MASK)
    w32 = {k: v.to(torch.float32) for k, v in weights.items()}
    with torch.no_grad():
        ref_nomask = mdlm_ref.forward_logits(w32, cfg, arch, input_ids, None)
        ref_mask = mdlm_ref.forward_logits(w32, cfg, arch, input_ids, am)
        # key masking == running the unpadded prefix alone (positions 0..3 are unchanged)
        short = mdlm_ref.forward_logits(w32, cfg, arch, input_ids[1:, :4], None)
    model = hf_model(cfg, arch, weights)
    tf_nomask = hf_logits(model, input_ids, None)
    tf_mask = hf_logits(model, input_ids, am)
    tf_causal = hf_causal_logits(model, input_ids)

    d_nomask = max_abs(ref_nomask, tf_nomask)
    d_mask = max_abs(ref_mask, tf_mask)
    assert d_nomask <= ATOL and d_mask <= ATOL, (d_nomask, d_mask)
    # sanity: the model is really bidirectional, the mask really matters, and only keys are masked
    d_causal = max_abs(tf_causal, tf_nomask)
    assert d_causal > 1e-2, f"transformers output looks causal-independent? {d_causal}"
    assert max_abs(ref_mask[0], ref_nomask[0]) < 1e-5, "row without padding must not change"
    assert max_abs(ref_mask[1, :4], ref_nomask[1, :4]) > 1e-3, "padding mask has no effect?"
    assert max_abs(ref_mask[1, :4], short[0]) < 1e-4, "masked keys must behave like absent tokens"
    std_pos = float(ref_nomask[0].std(dim=0).mean())
    assert std_pos > 0.3, f"logits barely differ between positions ({std_pos})"
    return {
        "logits_nomask": ref_nomask,
        "logits_mask": ref_mask,
        "transformers_logits_nomask": tf_nomask,
        "transformers_logits_mask": tf_mask,
        "diff_nomask": d_nomask,
        "diff_mask": d_mask,
        "diff_causal": d_causal,
    }


def generate():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # bitwise-stable float reductions between runs
    # only the folders this script owns are replaced; anything else under tests/fixtures/ is left alone
    for sub in ["tokenizers", "reference"] + [spec[0] for spec in FIXTURE_SPECS]:
        shutil.rmtree(os.path.join(FIXTURES, sub), ignore_errors=True)
    os.makedirs(REFERENCE)

    tok_llada = make_llada_tokenizer(os.path.join(TOK_DIR, "llada"))
    tok_dream = make_dream_tokenizer(os.path.join(TOK_DIR, "dream"))
    print(f"llada tokenizer: {tok_llada['n_bpe']} BPE + {len(SPECIAL_LLADA)} special = {tok_llada['size']}; ids {tok_llada['ids']}")
    print(f"dream tokenizer: {tok_dream['n_bpe']} BPE + {len(SPECIAL_DREAM)} added = {tok_dream['size']}; ids {tok_dream['ids']}")

    summary = {}
    for name, arch, seed, dtype, shards in FIXTURE_SPECS:
        out = os.path.join(FIXTURES, name)
        tok = tok_llada if arch == "llada" else tok_dream
        cfg = llada_config(tok, DTYPE_NAME[dtype]) if arch == "llada" else dream_config(tok)
        w = {k: v.to(dtype).contiguous() for k, v in random_weights(cfg, arch, seed).items()}
        save_checkpoint(out, cfg, w, shards)
        src = os.path.join(TOK_DIR, arch)
        for fn in LLADA_TOKENIZER_FILES if arch == "llada" else DREAM_TOKENIZER_FILES:
            shutil.copyfile(os.path.join(src, fn), os.path.join(out, fn))

        # reference logits from what is on disk (bf16/f16 weights upcast to f32)
        cfg_disk, w_disk = mdlm_ref.load_checkpoint(out)
        assert all(t.dtype == dtype for t in w_disk.values())
        ids = reference_inputs(cfg_disk, tok, seed)
        r = compute_references(cfg_disk, arch, w_disk, ids)
        write_reference_json(
            os.path.join(REFERENCE, f"{name}.json"),
            {
                "checkpoint": name,
                "arch": arch,
                "weights_dtype": DTYPE_NAME[dtype],
                "vocab_size": int(r["logits_nomask"].shape[-1]),
                "input_ids": ids.tolist(),
                "attention_mask": REF_MASK,
                "logits_nomask": tensor_to_list(r["logits_nomask"]),
                "logits_mask": tensor_to_list(r["logits_mask"]),
                "transformers_logits_nomask": tensor_to_list(r["transformers_logits_nomask"]),
                "transformers_logits_mask": tensor_to_list(r["transformers_logits_mask"]),
            },
        )
        summary[name] = r
        print(
            f"{name:14s} {DTYPE_NAME[dtype]:9s} max|mdlm_ref - transformers|: nomask {r['diff_nomask']:.3e}  "
            f"mask {r['diff_mask']:.3e}   (causal vs bidirectional: {r['diff_causal']:.3f})"
        )

    # JSON round trip of the written logits is exact at float32
    for name, *_ in FIXTURE_SPECS:
        ref = json.load(open(os.path.join(REFERENCE, f"{name}.json")))
        for key in ("logits_nomask", "logits_mask", "transformers_logits_nomask", "transformers_logits_mask"):
            a = torch.tensor(ref[key], dtype=torch.float32)
            assert torch.equal(a, summary[name][key]), (name, key)

    cases = make_tokenizer_cases(os.path.join(TOK_DIR, "llada"), os.path.join(TOK_DIR, "dream"))
    write_tokenizer_cases(os.path.join(REFERENCE, "tokenizer_cases.json"), cases)
    print(f"tokenizer cases: {len(cases['llada'])} llada, {len(cases['dream'])} dream, {len(cases['templates'])} templates")

    # every fixture must pass its own --check-saved
    for name, *_ in FIXTURE_SPECS:
        ok, msgs = check_saved(os.path.join(FIXTURES, name), name, quiet=True)
        assert ok, msgs

    total = 0
    for sub in ["tokenizers", "reference"] + [spec[0] for spec in FIXTURE_SPECS]:
        for root, _, files in os.walk(os.path.join(FIXTURES, sub)):
            for fn in files:
                total += os.path.getsize(os.path.join(root, fn))
    print(f"fixtures total size: {total} bytes ({total / 1e6:.3f} MB)")
    assert total < 1_500_000, "fixtures exceed 1.5 MB"


# ----------------------------------------------------------------------------------------------
# --check-saved
# ----------------------------------------------------------------------------------------------

ARCH_KEYS = {
    "llada": ["model_type", "d_model", "n_layers", "n_heads", "n_kv_heads", "mlp_hidden_size", "vocab_size",
              "embedding_size", "rope_theta", "rms_norm_eps", "weight_tying", "include_bias", "include_qkv_bias",
              "mask_token_id"],
    "dream": ["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
              "intermediate_size", "vocab_size", "rope_theta", "rms_norm_eps", "tie_word_embeddings",
              "mask_token_id"],
}
INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    iv = INT_VIEW[a.element_size()]
    return torch.equal(a.contiguous().view(iv), b.contiguous().view(iv))


def check_saved(saved_dir: str, like: str, quiet: bool = False) -> tuple[bool, list[str]]:
    fixture_dir = os.path.join(FIXTURES, like)
    errors: list[str] = []
    info: list[str] = []
    if not os.path.isdir(fixture_dir):
        return False, [f"unknown fixture {like!r} (no {fixture_dir})"]

    # -- files and metadata
    try:
        files = mdlm_ref.safetensors_files(saved_dir)
    except FileNotFoundError as e:
        return False, [str(e)]
    for path in files:
        if not os.path.exists(path):
            errors.append(f"missing shard {path}")
            continue
        with safe_open(path, framework="pt") as h:
            md = h.metadata()
        if not md or md.get("format") != "pt":
            errors.append(f"{os.path.basename(path)}: metadata {md!r} lacks format=pt")
    index = os.path.join(saved_dir, "model.safetensors.index.json")
    if errors:
        return False, errors

    if not os.path.exists(os.path.join(saved_dir, "config.json")):
        return False, [f"no config.json in {saved_dir}"]
    try:
        saved_cfg, saved_w = mdlm_ref.load_checkpoint(saved_dir)
    except Exception as e:  # unreadable json / safetensors, duplicate tensors ...
        return False, [f"cannot load {saved_dir}: {type(e).__name__}: {e}"]
    fix_cfg, fix_w = mdlm_ref.load_checkpoint(fixture_dir)
    arch = mdlm_ref.arch_of(fix_cfg)
    info.append(f"{len(files)} file(s), {len(saved_w)} tensors, arch {arch}")

    if os.path.exists(index):
        idx = json.load(open(index))
        wm = idx.get("weight_map", {})
        for path in files:
            with safe_open(path, framework="pt") as h:
                for k in h.keys():
                    if wm.get(k) != os.path.basename(path):
                        errors.append(f"index.json maps {k} to {wm.get(k)} but it is in {os.path.basename(path)}")
        if set(wm) != set(saved_w):
            errors.append("index.json weight_map names differ from the stored tensors")
        total = sum(t.numel() * t.element_size() for t in saved_w.values())
        ts = idx.get("metadata", {}).get("total_size")
        if ts != total:
            errors.append(f"index.json metadata.total_size {ts} != sum of tensor bytes {total}")

    # -- config
    for k in ARCH_KEYS[arch]:
        if saved_cfg.get(k) != fix_cfg.get(k):
            errors.append(f"config.json[{k!r}] = {saved_cfg.get(k)!r}, fixture has {fix_cfg.get(k)!r}")

    # -- tensors, bit for bit
    missing = sorted(set(fix_w) - set(saved_w))
    extra = sorted(set(saved_w) - set(fix_w))
    if missing:
        errors.append(f"missing tensors: {missing}")
    if extra:
        errors.append(f"unexpected tensors: {extra}")
    n_bad = 0
    for k in sorted(set(fix_w) & set(saved_w)):
        a, b = saved_w[k], fix_w[k]
        if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
            errors.append(f"{k}: saved {a.dtype} {tuple(a.shape)}, fixture {b.dtype} {tuple(b.shape)}")
            n_bad += 1
        elif not bits_equal(a, b):
            diff = float((a.float() - b.float()).abs().max())
            errors.append(f"{k}: values differ (max |diff| {diff:.3e})")
            n_bad += 1
    info.append(f"tensors bit-identical: {len(set(fix_w) & set(saved_w)) - n_bad}/{len(fix_w)}")

    # -- logits on the reference inputs (transformers model + mdlm_ref, from the SAVED config and weights)
    if not missing and not extra and not any("config.json" in e for e in errors):
        ref = json.load(open(os.path.join(REFERENCE, f"{like}.json")))
        ids = torch.tensor(ref["input_ids"])
        am = torch.tensor(ref["attention_mask"])
        model = hf_model(saved_cfg, arch, saved_w)
        w32 = {k: v.float() for k, v in saved_w.items()}
        with torch.no_grad():
            got = {
                "transformers nomask": (hf_logits(model, ids, None), "logits_nomask"),
                "transformers mask": (hf_logits(model, ids, am), "logits_mask"),
                "mdlm_ref nomask": (mdlm_ref.forward_logits(w32, saved_cfg, arch, ids, None), "logits_nomask"),
                "mdlm_ref mask": (mdlm_ref.forward_logits(w32, saved_cfg, arch, ids, am), "logits_mask"),
            }
        for label, (logits, key) in got.items():
            want = torch.tensor(ref[key], dtype=torch.float32)
            if logits.shape != want.shape:
                errors.append(f"{label}: logits shape {tuple(logits.shape)} != {tuple(want.shape)}")
                continue
            d = max_abs(logits, want)
            info.append(f"{label}: max |diff| vs reference {d:.3e}")
            if not d <= ATOL:
                errors.append(f"{label}: max |diff| {d:.3e} > {ATOL}")

    ok = not errors
    if not quiet:
        for line in info:
            print("  " + line)
    return ok, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-saved", metavar="DIR", help="checkpoint folder written by the Rust code")
    ap.add_argument("--like", metavar="NAME", help="fixture to compare with (llada_f32, llada_bf16, llada_sharded, dream_gqa)")
    args = ap.parse_args()
    if args.check_saved:
        if not args.like:
            ap.error("--check-saved needs --like NAME")
        torch.set_num_threads(1)
        print(f"checking {args.check_saved} against fixture {args.like}")
        ok, errors = check_saved(args.check_saved, args.like)
        if ok:
            print("OK")
            sys.exit(0)
        print("FAILED:")
        for e in errors:
            print("  - " + e)
        sys.exit(1)
    if args.like:
        ap.error("--like only makes sense with --check-saved")
    generate()


if __name__ == "__main__":
    main()
