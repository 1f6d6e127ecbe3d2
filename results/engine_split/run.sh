#!/bin/sh
# Demo-run scores before and after the engine/window split (issue 17), same seed (0).
# OLD = release build of 31be696, NEW = debug build of the split; each run fresh (own cache).
# Then: python3 compare_scores.py A.json B.json  (every number of summary.json's before/after).
set -e
for m in mdu npo; do
  XDG_CACHE_HOME=$(mktemp -d) $OLD unlearn --demo --device cpu --method $m --out old-$m-1 --quiet
  XDG_CACHE_HOME=$(mktemp -d) $OLD unlearn --demo --device cpu --method $m --out old-$m-2 --quiet
  XDG_CACHE_HOME=$(mktemp -d) $NEW unlearn --demo --device cpu --method $m --out new-$m --quiet
done
# Same-binary reproducibility, one thread each (single_thread_losses.txt):
RAYON_NUM_THREADS=1 MATMUL_NUM_THREADS=1 $NEW unlearn --demo --device cpu --method mdu --steps 6 \
  --set eval_before=false --set eval_after=false --set live_every=0 --out det --quiet
