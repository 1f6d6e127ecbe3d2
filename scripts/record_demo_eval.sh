#!/usr/bin/env bash
# Records assets/demo/eval_record.json: the default "before" evaluation and privacy audit of the demo model and the
# retain-only model's truth ratios and privacy-audit statistics on the CPU, under the evaluation-cache keys a demo run computes,
# so a first `mdu unlearn --demo` (and the GUI's first run) reuses them instead of spending about a
# minute. Run after scripts/package_demo.sh and a release build, then rebuild (the record is
# embedded). Re-run whenever the demo, the evaluation settings or the crate version change:
# tests/suite/demo.rs fails when the record no longer matches.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mdu=${MDU:-$root/target/release/mdu}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# A private data folder and no reuse: every evaluation is computed and lands in the fresh cache.
XDG_DATA_HOME="$tmp/data" MDU_NO_EVAL_CACHE=1 "$mdu" unlearn --demo --device cpu --out "$tmp/run" \
  --set steps=1 --set live_every=0 --set eval_after=false > /dev/null
python3 - "$tmp/data/mdu-workbench/eval-cache" "$root/assets/demo/eval_record.json" <<'PY'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
record = {f[:-5]: json.load(open(os.path.join(src, f))) for f in sorted(os.listdir(src)) if f.endswith(".json")}
json.dump(record, open(out, "w"), separators=(",", ":"), sort_keys=True)
print(f"{out}: {', '.join(record)}")
PY
