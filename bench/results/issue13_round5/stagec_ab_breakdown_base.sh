#!/bin/bash
# bench/stage_breakdown.py --rounds 20 --calls 1000 (thread CPU time), alternately on the tree
# before this round (BASE: a copy of main 43777e2 with its extensions built in place, mwhost
# imported from BASE/pkg, a link to BASE/host) and on this branch (c: the default).
BASE=${BASE:-/tmp/stagec_base}
cd /work/wt/stagec
out=bench/results/issue13_round5
for i in 1 2; do
  for v in base c; do
    echo "== $v run $i: $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ $v = base ]; then
      (cd $BASE && STAGE_BREAKDOWN_CLOCK=thread PYTHONPATH=$BASE/pkg /work/wt/stagec/.venv/bin/python bench/stage_breakdown.py --rounds 20 --calls 1000 > /dev/null)
      cp $BASE/bench/results/stage_breakdown.md $out/stagec_breakdown_cpu_${v}_$i.md
    else
      STAGE_BREAKDOWN_CLOCK=thread .venv/bin/python bench/stage_breakdown.py --rounds 20 --calls 1000 > /dev/null
      cp bench/results/stage_breakdown.md $out/stagec_breakdown_cpu_${v}_$i.md
    fi
  done
done
git checkout bench/results/stage_breakdown.md bench/results/stage_breakdown.json
echo "== done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
