#!/usr/bin/env bash
# `mdu score` (ROUGE-L, Rust) next to Python rouge-score 0.1.2 on the same pairs, same machine, same run:
# median of RUNS end-to-end process times each, outputs checked identical (every float), ratio printed.
# usage: scripts/bench_score.sh [PATH_TO_MDU] [PYTHON] [PAIRS] [RUNS]
#   PATH_TO_MDU defaults to target/release/mdu (cargo build --release); PYTHON must have rouge-score 0.1.2.
set -euo pipefail
cd "$(dirname "$0")/.."
mdu="${1:-target/release/mdu}"
python="${2:-/opt/venv/bin/python}"
pairs="${3:-10000}"
runs="${4:-3}"
if [ ! -x "$mdu" ]; then
  echo "no $mdu: run cargo build --release first" >&2
  exit 1
fi
exec "$python" scripts/bench_score.py bench --mdu "$mdu" --n "$pairs" --runs "$runs"
