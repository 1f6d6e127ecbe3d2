#!/usr/bin/env python3
"""Every privacy-audit number of a demo sweep: reads the sweep's runs.json (one summary per run)
and prints a Markdown table of the after-training audit, means over seeds (± sample SD where it
matters), plus the starting model's and the retain-only model's AUCs for reference.

Usage: scripts/privacy_table.py results/demo_sweep_privacy/runs.json > results/demo_sweep_privacy/privacy.md
Standard library only."""
import json
import statistics
import sys

ATTACKS = ["mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_gradnorm", "mia_reference"]
LABELS = {"mdu": "MDU τ = 0", "ga": "Gradient ascent", "graddiff": "GradDiff", "npo": "NPO",
          "simnpo": "SimNPO", "wga": "WGA", "undial": "UNDIAL", "rmu": "RMU"}

runs = json.load(open(sys.argv[1]))
order, by_method = [], {}
for r in runs:
    if r["method"] not in by_method:
        order.append(r["method"])
    by_method.setdefault(r["method"], []).append(r["summary"])


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def fmt(v, digits=3):
    return "–" if v is None else f"{v:.{digits}f}"


head = ["method", "seeds"] + [a.removeprefix("mia_") for a in ATTACKS] + [
    "privleak", "extraction strength", "exact memorisation"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
first = by_method[order[0]][0]
for when, label, summaries in [("before", "starting model", [first])]:
    p = summaries[0][when]["privacy"]
    cells = [label, "–"] + [fmt(p["auc"].get(a)) for a in ATTACKS] + [
        fmt(p.get("privleak"), 1), fmt(p.get("extraction_strength")), fmt(p.get("exact_memorization"))]
    print("| " + " | ".join(cells) + " |")
ro = first["before"]["privacy"].get("retain_only_auc", {})
print("| " + " | ".join(["retain-only model", "–"] + [fmt(ro.get(a)) for a in ATTACKS] + ["0 (by definition)", "–", "–"]) + " |")
for m in order:
    ps = [s["after"]["privacy"] for s in by_method[m]]
    cells = [LABELS.get(m, m), str(len(ps))]
    cells += [fmt(mean(p["auc"].get(a) for p in ps)) for a in ATTACKS]
    leak = [p.get("privleak") for p in ps]
    sd = f" ± {statistics.stdev(leak):.1f}" if len(leak) > 1 else ""
    cells += [fmt(mean(leak), 1) + sd, fmt(mean(p.get("extraction_strength") for p in ps)),
              fmt(mean(p.get("exact_memorization") for p in ps))]
    print("| " + " | ".join(cells) + " |")
