"""References for the Rust likelihood core and MDLM sampler.

Likelihood: for fixed mask sets, the summed NLL of the masked answer tokens (Dream: logits shifted
right by one), on llada_f32 and dream_gqa -> tests/fixtures/reference/likelihood_cases.json.

Sampler: reference for the Rust MDLM sampler (src/diffusion/sampler.rs): dllm's MDLMSampler with
low-confidence remasking at temperature 0, written from mdlm.md §4.1-4.2, run on the llada_f32
fixture. Writes tests/fixtures/reference/sampler_llada_f32.json.

    /opt/venv/bin/python scripts/make_sampler_fixture.py
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import mdlm_ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dllm_transfer_counts(masked: int, steps: int) -> list[int]:
    """dllm get_num_transfer_tokens, linear schedule, non-stochastic; zero steps dropped."""
    out, remaining = [], masked
    for j in range(steps):
        if remaining == 0:
            break
        t = torch.tensor((steps - j) / steps, dtype=torch.float32)
        s = torch.tensor((steps - j - 1) / steps, dtype=torch.float32)
        p = 1.0 - s / t
        k = min(int(torch.round(torch.tensor(float(remaining), dtype=torch.float32) * p).item()), remaining)
        remaining -= k
        if k > 0:
            out.append(k)
    return out


@torch.no_grad()
def sample(weights, cfg, prompts, mask_id, pad_id, gen, block_size, steps):
    batch = len(prompts)
    width = max(len(p) for p in prompts) + gen
    x = torch.full((batch, width), pad_id, dtype=torch.long)
    am = torch.zeros((batch, width), dtype=torch.long)
    for b, p in enumerate(prompts):
        x[b, : len(p)] = torch.tensor(p)
        x[b, len(p) : len(p) + gen] = mask_id
        am[b, : len(p) + gen] = 1
    blocks = math.ceil(gen / block_size)
    spb = math.ceil(steps / blocks)
    for blk in range(blocks):
        spans = [(len(p) + blk * block_size, len(p) + min((blk + 1) * block_size, gen)) for p in prompts]
        sched = [dllm_transfer_counts(int((x[b, lo:hi] == mask_id).sum()), spb) for b, (lo, hi) in enumerate(spans)]
        for i in range(max(len(s) for s in sched)):
            logits = mdlm_ref.forward_logits(weights, cfg, "llada", x, am).double()
            x0 = logits.argmax(-1)
            conf = torch.softmax(logits, -1).gather(-1, x0[..., None])[..., 0]
            for b, (lo, hi) in enumerate(spans):
                k = sched[b][i] if i < len(sched[b]) else 0
                cand = [(float(conf[b, pos]), pos) for pos in range(lo, hi) if x[b, pos] == mask_id]
                cand.sort(key=lambda c: (-c[0], c[1]))
                for _, pos in cand[:k]:
                    x[b, pos] = x0[b, pos]
    return [x[b, len(p) : len(p) + gen].tolist() for b, p in enumerate(prompts)]


@torch.no_grad()
def masked_nll(weights, cfg, arch, prompt, answer, mask_id, masks):
    out = []
    for m in masks:
        seq = torch.tensor([prompt + answer])
        for i in m:
            seq[0, len(prompt) + i] = mask_id
        logits = mdlm_ref.forward_logits(weights, cfg, arch, seq, None)[0].double()
        if arch == "dream":
            logits = torch.cat([logits[:1], logits[:-1]], 0)
        logp = torch.log_softmax(logits, -1)
        out.append(float(sum(-logp[len(prompt) + i, answer[i]] for i in m)))
    return out


def likelihood_cases():
    cases = []
    for name, arch in [("llada_f32", "llada"), ("dream_gqa", "dream")]:
        cfg, weights = mdlm_ref.load_checkpoint(os.path.join(ROOT, "tests", "fixtures", name))
        weights = {k: v.float() for k, v in weights.items()}
        prompt, answer = [3, 50, 51, 52, 7], [90, 91, 92, 93, 94, 95]
        masks = [[0], [2, 5], [0, 1, 2, 3, 4, 5], [1, 3, 4]]
        cases.append({"checkpoint": name, "prompt": prompt, "answer": answer, "mask_id": cfg["mask_token_id"],
                      "shift_logits": arch == "dream", "masks": masks,
                      "nll_sums": masked_nll(weights, cfg, arch, prompt, answer, cfg["mask_token_id"], masks)})
    path = os.path.join(ROOT, "tests", "fixtures", "reference", "likelihood_cases.json")
    with open(path, "w") as f:
        json.dump(cases, f, indent=1)
    print(path)


@torch.no_grad()
def sample_dream(weights, cfg, prompt, mask_id, gen, steps, eps=1e-3):
    """HF Dream diffusion_generate, alg="entropy", temperature 0, one unpadded row."""
    x = torch.tensor([prompt + [mask_id] * gen])
    timesteps = torch.linspace(1, eps, steps + 1)
    for i in range(steps):
        mask_index = x == mask_id
        logits = mdlm_ref.forward_logits(weights, cfg, "dream", x, None).double()
        logits = torch.cat([logits[:, :1], logits[:, :-1]], 1)
        ml = logits[mask_index]
        probs = torch.softmax(ml, -1)
        conf, x0 = probs.max(-1)
        conf = (probs * torch.log(probs + 1e-10)).sum(-1)
        t, s = timesteps[i], timesteps[i + 1]
        n = int(mask_index.sum() * (1 - s / t)) if i < steps - 1 else int(mask_index.sum())
        full = torch.full(x.shape, -torch.inf, dtype=torch.float64)
        full[mask_index] = conf
        if n > 0:
            idx = torch.topk(full[0], n).indices
            cand = torch.full(x.shape, mask_id, dtype=torch.long)
            cand[mask_index] = x0
            x[0, idx] = cand[0, idx]
    return x[0, len(prompt):].tolist()


def dream_case():
    cfg, weights = mdlm_ref.load_checkpoint(os.path.join(ROOT, "tests", "fixtures", "dream_gqa"))
    weights = {k: v.float() for k, v in weights.items()}
    prompt, gen, steps = [286, 40, 41, 42, 43, 287, 286, 50], 8, 6
    slot = sample_dream(weights, cfg, prompt, cfg["mask_token_id"], gen, steps)
    out = {"checkpoint": "dream_gqa", "prompts": [prompt], "max_new_tokens": gen, "block_size": gen, "steps": steps,
           "answer_slots": [slot]}
    path = os.path.join(ROOT, "tests", "fixtures", "reference", "sampler_dream_gqa.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(path, slot)


def main():
    likelihood_cases()
    dream_case()
    ckpt = os.path.join(ROOT, "tests", "fixtures", "llada_f32")
    cfg, weights = mdlm_ref.load_checkpoint(ckpt)
    weights = {k: v.float() for k, v in weights.items()}
    mask_id, pad_id = cfg["mask_token_id"], cfg["eos_token_id"]
    prompts = [[285, 288, 40, 41, 42, 290], [285, 288, 60, 61, 62, 63, 64, 65, 290, 289]]
    settings = {"max_new_tokens": 8, "block_size": 4, "steps": 8}
    slots = sample(weights, cfg, prompts, mask_id, pad_id, settings["max_new_tokens"], settings["block_size"], settings["steps"])
    out = {"checkpoint": "llada_f32", "prompts": prompts, **settings, "temperature": 0.0, "answer_slots": slots}
    path = os.path.join(ROOT, "tests", "fixtures", "reference", "sampler_llada_f32.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(path, slots)


if __name__ == "__main__":
    main()
