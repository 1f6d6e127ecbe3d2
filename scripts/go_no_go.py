"""Go / no-go check for the MDU demo world (CPU, PyTorch).

Question: on a tiny LLaDA-style model that has memorised a small slice of the `mdu demo-world` data,
does MDU (tau = 0, eta = 0, forward KL, alpha = 1 retain SFT) cut forget ROUGE-L recall much more than
retain ROUGE-L recall, while plain gradient ascent (GA) on the forget MDLM loss collapses both?

Pipeline (see scripts/go_no_go.md for the results):
  1. small world: the 4 forget people + the first N retain people (16 items each), byte-level BPE;
  2. MDLM SFT of a randomly initialised tiny LLaDA (mdlm_ref.forward_logits, autograd) until greedy
     low-confidence-remasking generation reaches ROUGE-L recall >= target on forget and retain;
  3. MDU (tau = 0) and GA from that checkpoint for the same steps / lr, ROUGE-L before / during / after.

Usage:
  ./target/release/mdu demo-world --out /tmp/gng_world --seed 0
  /opt/venv/bin/python scripts/go_no_go.py --world /tmp/gng_world --out /tmp/gng_out
  # re-run only the unlearning part from the saved SFT checkpoint:
  /opt/venv/bin/python scripts/go_no_go.py --world /tmp/gng_world --out /tmp/gng_out --skip-sft
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mdlm_ref import forward_logits  # noqa: E402

SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
EPS_T = 1e-3  # time_epsilon (dllm MDLMConfig / MDU)


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def small_world(world_dir, n_retain_people, items_per_person=16):
    forget = read_jsonl(os.path.join(world_dir, "forget.jsonl"))
    retain = read_jsonl(os.path.join(world_dir, "retain.jsonl"))
    assert len(forget) % items_per_person == 0 and len(retain) % items_per_person == 0
    retain = retain[: n_retain_people * items_per_person]  # first N people, file order
    return forget, retain


def train_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    return tok


class Chat:
    """dllm LLaDA chat template (mdlm.md 1.6): prompt = template([user q], add_generation_prompt=True)."""

    def __init__(self, tok):
        self.tok = tok
        self.id = {t: tok.token_to_id(t) for t in SPECIALS}
        self.bos, self.eos, self.mask = self.id["<|startoftext|>"], self.id["<|endoftext|>"], self.id["<|mdm_mask|>"]
        self.eot = self.id["<|eot_id|>"]
        self.special_ids = set(self.id.values())

    def prompt_ids(self, q):
        s = ("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n" + q.strip()
             + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        return self.tok.encode(s, add_special_tokens=False).ids

    def answer_ids(self, a):
        # MDU / dllm labels: "<answer tokens><|eot_id|>", encoded without special tokens
        return self.tok.encode(a, add_special_tokens=False).ids + [self.eot]

    def decode_generation(self, ids):
        out = []
        for i in ids:
            if i in (self.eos, self.eot):
                break
            out.append(i)
        return self.tok.decode(out, skip_special_tokens=True).strip()


def encode_items(chat, items):
    return [dict(p=chat.prompt_ids(it["question"]), a=chat.answer_ids(it["answer"]), gold=it["answer"]) for it in items]


def sft_batch(chat, rows, slot):
    """LLaDA SFT layout: prompt + answer + EOS pads up to a fixed answer slot; every slot position is an
    answer position (EOS pads trained). Rows are right-padded with EOS beyond prompt+slot, attention-masked."""
    L = max(len(r["p"]) for r in rows) + slot
    ids = torch.full((len(rows), L), chat.eos, dtype=torch.long)
    maskable = torch.zeros((len(rows), L), dtype=torch.bool)
    attn = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        p, a = r["p"], r["a"]
        assert len(a) <= slot
        ids[i, : len(p)] = torch.tensor(p)
        ids[i, len(p): len(p) + len(a)] = torch.tensor(a)
        maskable[i, len(p): len(p) + slot] = True
        attn[i, : len(p) + slot] = 1
    return ids, maskable, attn


def mdu_batch(chat, rows):
    """MDU collator layout: prompt + answer(+eot), right-padded with EOS, labels -100 on the pads,
    attention_mask popped (pads visible)."""
    L = max(len(r["p"]) + len(r["a"]) for r in rows)
    ids = torch.full((len(rows), L), chat.eos, dtype=torch.long)
    maskable = torch.zeros((len(rows), L), dtype=torch.bool)
    for i, r in enumerate(rows):
        p, a = r["p"], r["a"]
        ids[i, : len(p)] = torch.tensor(p)
        ids[i, len(p): len(p) + len(a)] = torch.tensor(a)
        maskable[i, len(p): len(p) + len(a)] = True
    return ids, maskable, None


# ----------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------

def make_cfg(vocab, d, n_layers, n_heads, mlp, theta):
    return dict(model_type="llada", d_model=d, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                mlp_hidden_size=mlp, vocab_size=vocab, embedding_size=vocab, rms_norm_eps=1e-5,
                rope_theta=theta, multi_query_attention=False)


def init_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    d, V, m, nl = cfg["d_model"], cfg["vocab_size"], cfg["mlp_hidden_size"], cfg["n_layers"]

    def n(*shape, std=0.02):
        return (torch.randn(*shape, generator=g) * std).requires_grad_(True)

    out_std = 0.02 / math.sqrt(2 * nl)
    w = {"model.transformer.wte.weight": n(V, d),
         "model.transformer.ln_f.weight": torch.ones(d, requires_grad=True),
         "model.transformer.ff_out.weight": n(V, d)}
    for i in range(nl):
        p = f"model.transformer.blocks.{i}."
        w[p + "attn_norm.weight"] = torch.ones(d, requires_grad=True)
        w[p + "ff_norm.weight"] = torch.ones(d, requires_grad=True)
        w[p + "q_proj.weight"] = n(d, d)
        w[p + "k_proj.weight"] = n(d, d)
        w[p + "v_proj.weight"] = n(d, d)
        w[p + "attn_out.weight"] = n(d, d, std=out_std)
        w[p + "ff_proj.weight"] = n(m, d)
        w[p + "up_proj.weight"] = n(m, d)
        w[p + "ff_out.weight"] = n(d, m, std=out_std)
    return w


def clone_weights(w, grad):
    return {k: v.detach().clone().requires_grad_(grad) for k, v in w.items()}


def make_opt(w, lr, wd):
    decay = [v for k, v in w.items() if v.dim() >= 2]
    no_decay = [v for k, v in w.items() if v.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.98), eps=1e-8)


# ----------------------------------------------------------------------------------------------
# losses
# ----------------------------------------------------------------------------------------------

def forward_mask(ids, maskable, g):
    b, l = ids.shape
    t = EPS_T + (1 - EPS_T) * torch.rand(b, generator=g)  # p_mask = t (linear scheduler)
    masked = (torch.rand(b, l, generator=g) < t[:, None]) & maskable
    return t, masked


def mdlm_loss(w, cfg, chat, ids, maskable, attn, g):
    """dllm MDLMTrainer loss, LLaDA: 1/(t+1e-6) weight, 'token' normalisation (sum / #maskable)."""
    t, masked = forward_mask(ids, maskable, g)
    noisy = torch.where(masked, torch.full_like(ids, chat.mask), ids)
    logits = forward_logits(w, cfg, "llada", noisy, attn)
    ce = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")  # [b,l]
    wgt = (1.0 / (t + 1e-6))[:, None]
    return (ce * wgt * masked).sum() / maskable.sum().clamp_min(1)


def null_anchor_loss(w, w_ref, cfg, chat, ids, maskable, g, tau, eta):
    """MDU forget term (mdu.md 3.2): KL(p_theta(.|Q, masked A) || softmax(tau*(l_u - eta*(l_c - l_u)))),
    mean over masked answer positions, no 1/t weight. Anchor pass: frozen theta0 on
    [<mask> x every non-answer position | the same masked answer], no attention mask."""
    _, masked = forward_mask(ids, maskable, g)
    M = torch.full_like(ids, chat.mask)
    x_c = torch.where(masked, M, ids)
    x_u = torch.where(~maskable, M, x_c)
    logits_c = forward_logits(w, cfg, "llada", x_c, None)
    with torch.no_grad():
        logits_u = forward_logits(w_ref, cfg, "llada", x_u, None)
    target = (tau * (logits_u - eta * (logits_c.detach() - logits_u))).detach()
    lp_c = F.log_softmax(logits_c.float(), -1)
    lp_t = F.log_softmax(target.float(), -1)
    kl = (lp_c.exp() * torch.nan_to_num(lp_c - lp_t, nan=0.0, posinf=0.0, neginf=0.0)).sum(-1)  # forward KL
    n = masked.sum()
    return (kl * masked).sum() / n.clamp_min(1)


# ----------------------------------------------------------------------------------------------
# generation (dllm MDLMSampler: temperature 0, low_confidence, one block, steps = slot)
# ----------------------------------------------------------------------------------------------

def num_transfer(n, steps):
    """dllm get_num_transfer_tokens, linear scheduler, stochastic=False (mdlm.md 4.1)."""
    out, rem = [], n
    for j in range(steps):
        tt, s = (steps - j) / steps, (steps - j - 1) / steps
        p = float(torch.tensor(1.0, dtype=torch.float32) - torch.tensor(s, dtype=torch.float32) / torch.tensor(tt, dtype=torch.float32))
        k = int(torch.round(torch.tensor(rem * p, dtype=torch.float32)).item())
        k = min(k, rem)
        rem -= k
        out.append(k)
        if rem == 0:
            break
    return [k for k in out if k > 0]


@torch.no_grad()
def generate(w, cfg, chat, rows, slot, steps=None, chunk=64):
    steps = steps or slot
    sched = num_transfer(slot, steps)
    outs = []
    for c0 in range(0, len(rows), chunk):
        rs = rows[c0: c0 + chunk]
        L = max(len(r["p"]) for r in rs) + slot
        x = torch.full((len(rs), L), chat.eos, dtype=torch.long)
        attn = torch.zeros((len(rs), L), dtype=torch.long)
        gen = torch.zeros((len(rs), L), dtype=torch.bool)
        for i, r in enumerate(rs):
            p = r["p"]
            x[i, : len(p)] = torch.tensor(p)
            x[i, len(p): len(p) + slot] = chat.mask
            gen[i, len(p): len(p) + slot] = True
            attn[i, : len(p) + slot] = 1
        for k in sched:
            is_mask = x == chat.mask
            logits = forward_logits(w, cfg, "llada", x, attn)
            x0 = logits.argmax(-1)
            conf = torch.softmax(logits, -1).gather(-1, x0[..., None]).squeeze(-1)
            x0 = torch.where(is_mask, x0, x)
            conf = torch.where(is_mask, conf, torch.full_like(conf, -float("inf")))
            idx = conf.topk(k, dim=1).indices
            sel = torch.zeros_like(is_mask)
            sel.scatter_(1, idx, True)
            x = torch.where(sel, x0, x)
        for i, r in enumerate(rs):
            outs.append(chat.decode_generation(x[i, gen[i]].tolist()))
    return outs


def rouge_recall(scorer, golds, preds):
    return [scorer.score(gt, pr)["rougeL"].recall for gt, pr in zip(golds, preds)]


def evaluate(w, cfg, chat, sets, slot, scorer, show=0):
    res = {}
    for name, rows in sets.items():
        preds = generate(w, cfg, chat, rows, slot)
        r = rouge_recall(scorer, [x["gold"] for x in rows], preds)
        res[name] = sum(r) / len(r)
        for j in range(show):
            log(f"    [{name}] gold: {rows[j]['gold']!r}\n    [{name}] pred: {preds[j]!r}")
    return res


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", default="/tmp/gng_world")
    ap.add_argument("--out", default="/tmp/gng_out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-retain-people", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=1500)
    ap.add_argument("--slot-extra", type=int, default=4)
    # model
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=512)
    ap.add_argument("--rope-theta", type=float, default=500000.0)
    # SFT
    ap.add_argument("--skip-sft", action="store_true", help="load OUT/sft.pt instead of training")
    ap.add_argument("--sft-steps", type=int, default=2000, help="cosine horizon / max steps")
    ap.add_argument("--sft-batch", type=int, default=32)
    ap.add_argument("--sft-lr", type=float, default=2e-3)
    ap.add_argument("--sft-warmup", type=int, default=100)
    ap.add_argument("--sft-wd", type=float, default=0.0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--target", type=float, default=0.8)
    ap.add_argument("--sft-eval-subset", type=int, default=2,
                    help="during SFT evaluate every k-th item only (k=2: one question template per fact); final evals use all")
    ap.add_argument("--max-sft-minutes", type=float, default=20.0)
    # unlearning
    ap.add_argument("--methods", default="mdu,ga")
    ap.add_argument("--un-steps", type=int, default=100)
    ap.add_argument("--un-lrs", default="3e-5,1e-4,3e-4", help="comma-separated learning rates")
    ap.add_argument("--un-batch", type=int, default=8, help="forget rows (and retain rows) per step")
    ap.add_argument("--un-seed", type=int, default=None, help="RNG seed of the unlearning batches/masks (default seed+2)")
    ap.add_argument("--un-eval", default="10,25,50", help="steps at which to evaluate")
    ap.add_argument("--tau", type=float, default=0.0)
    ap.add_argument("--eta", type=float, default=0.0)
    ap.add_argument("--alpha", type=float, default=1.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    forget_items, retain_items = small_world(args.world, args.n_retain_people)
    texts = [x for it in forget_items + retain_items for x in (it["question"], it["answer"])]
    tok = train_tokenizer(texts, args.vocab)
    chat = Chat(tok)
    V = tok.get_vocab_size()
    forget = encode_items(chat, forget_items)
    retain = encode_items(chat, retain_items)
    slot = max(len(r["a"]) for r in forget + retain) + args.slot_extra
    plen = [len(r["p"]) for r in forget + retain]
    alen = [len(r["a"]) for r in forget + retain]
    log(f"world: forget {len(forget)} items, retain {len(retain)} items; vocab {V}; prompt len {min(plen)}-{max(plen)}; "
        f"answer len (incl eot) {min(alen)}-{max(alen)} mean {sum(alen)/len(alen):.1f}; slot {slot}")
    cfg = make_cfg(V, args.d_model, args.layers, args.heads, args.mlp, args.rope_theta)
    sets = {"forget": forget, "retain": retain}
    ckpt = os.path.join(args.out, "sft.pt")
    summary = {"args": vars(args), "vocab": V, "slot": slot}

    # ---------------- SFT ----------------
    if args.skip_sft:
        saved = torch.load(ckpt)
        w = {k: v.requires_grad_(True) for k, v in saved["weights"].items()}
        summary["sft"] = saved["info"]
        log(f"loaded {ckpt}: {saved['info']}")
    else:
        w = init_weights(cfg, args.seed)
        nparam = sum(v.numel() for v in w.values())
        log(f"model: d {args.d_model}, layers {args.layers}, heads {args.heads}, mlp {args.mlp}: {nparam/1e6:.2f}M params")
        opt = make_opt(w, args.sft_lr, args.sft_wd)
        g = torch.Generator().manual_seed(args.seed + 1)
        data = forget + retain
        t0 = time.time()
        train_time = 0.0
        hist = []
        step = 0
        reached = False
        while step < args.sft_steps:
            ts = time.time()
            lr = args.sft_lr * min(1.0, (step + 1) / args.sft_warmup) * (
                0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.sft_steps))))
            for gr in opt.param_groups:
                gr["lr"] = lr
            idx = torch.randperm(len(data), generator=g)[: args.sft_batch].tolist()
            ids, maskable, attn = sft_batch(chat, [data[i] for i in idx], slot)
            loss = mdlm_loss(w, cfg, chat, ids, maskable, attn, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(w.values()), 1.0)
            opt.step()
            step += 1
            train_time += time.time() - ts
            if step % 50 == 0:
                log(f"  sft step {step} loss {loss.item():.4f} lr {lr:.2e} train {train_time/60:.1f} min")
            if step % args.eval_every == 0 or step == args.sft_steps:
                te = time.time()
                sub = {k: v[:: args.sft_eval_subset] for k, v in sets.items()}
                r = evaluate(w, cfg, chat, sub, slot, scorer, show=1)
                hist.append(dict(step=step, train_min=train_time / 60, **r))
                log(f"  EVAL sft step {step}: forget {r['forget']:.3f} retain {r['retain']:.3f} "
                    f"(eval {time.time()-te:.0f}s, total {(time.time()-t0)/60:.1f} min)")
                if r["forget"] >= args.target and r["retain"] >= args.target:
                    reached = True
                    break
            if (time.time() - t0) / 60 > args.max_sft_minutes:
                log("  SFT time budget exhausted")
                break
        info = dict(steps=step, train_minutes=train_time / 60, wall_minutes=(time.time() - t0) / 60,
                    reached_target=reached, history=hist)
        summary["sft"] = info
        torch.save({"weights": {k: v.detach() for k, v in w.items()}, "cfg": cfg, "info": info}, ckpt)
        log(f"SFT done: {info['steps']} steps, {info['train_minutes']:.1f} min train, reached={reached}")

    # ---------------- unlearning ----------------
    w0 = clone_weights(w, grad=False)  # frozen theta0 (anchor / reference)
    base = evaluate(w0, cfg, chat, sets, slot, scorer)
    log(f"BEFORE unlearning: forget {base['forget']:.3f} retain {base['retain']:.3f}")
    summary["before"] = base
    eval_at = sorted(set(int(s) for s in args.un_eval.split(",")) | {args.un_steps})
    runs = []
    for lr in [float(x) for x in args.un_lrs.split(",")]:
        for method in args.methods.split(","):
            wm = clone_weights(w0, grad=True)
            opt = make_opt(wm, lr, 0.0)
            g = torch.Generator().manual_seed(args.seed + 2 if args.un_seed is None else args.un_seed)
            curve = [dict(step=0, **base)]
            t0 = time.time()
            for step in range(1, args.un_steps + 1):
                fi = torch.randperm(len(forget), generator=g)[: args.un_batch].tolist()
                ri = torch.randperm(len(retain), generator=g)[: args.un_batch].tolist()
                f_ids, f_mask, _ = mdu_batch(chat, [forget[i] for i in fi])
                r_ids, r_mask, _ = mdu_batch(chat, [retain[i] for i in ri])
                if method == "mdu":
                    lf = null_anchor_loss(wm, w0, cfg, chat, f_ids, f_mask, g, args.tau, args.eta)
                    lr_ = mdlm_loss(wm, cfg, chat, r_ids, r_mask, None, g)
                    loss = lf + args.alpha * lr_
                    parts = f"kl {lf.item():.3f} retain {lr_.item():.3f}"
                elif method == "ga":
                    lf = mdlm_loss(wm, cfg, chat, f_ids, f_mask, None, g)
                    loss = -lf
                    parts = f"forget mdlm {lf.item():.3f}"
                else:
                    raise ValueError(method)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step % 10 == 0:
                    log(f"  {method} lr {lr:g} step {step}: {parts}")
                if step in eval_at:
                    r = evaluate(wm, cfg, chat, sets, slot, scorer, show=1 if step == args.un_steps else 0)
                    curve.append(dict(step=step, **r))
                    log(f"  EVAL {method} lr {lr:g} step {step}: forget {r['forget']:.3f} retain {r['retain']:.3f}")
            runs.append(dict(method=method, lr=lr, curve=curve, minutes=(time.time() - t0) / 60))
    summary["runs"] = runs
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    log("\n=== summary (ROUGE-L recall) ===")
    log(f"before: forget {base['forget']:.3f} retain {base['retain']:.3f}")
    for r in runs:
        c = " | ".join(f"s{x['step']}: F {x['forget']:.3f} R {x['retain']:.3f}" for x in r["curve"][1:])
        log(f"{r['method']:>4} lr {r['lr']:g}: {c}")


if __name__ == "__main__":
    main()
