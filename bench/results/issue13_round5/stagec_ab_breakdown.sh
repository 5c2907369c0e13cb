#!/bin/bash
# stage_breakdown before/after alternately: after = the C request phase (default), before = MWHOST_NO_STAGE_C=1
cd /work/wt/stagec
out=bench/results/issue13_round5
for i in 1 2; do
  for v in c py; do
    echo "== $v run $i: $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ $v = py ]; then sw=1; else sw=0; fi
    MWHOST_NO_STAGE_C=$sw .venv/bin/python bench/stage_breakdown.py --rounds 20 --calls 1000 > /dev/null
    cp bench/results/stage_breakdown.md $out/stagec_breakdown_${v}_$i.md
    cp bench/results/stage_breakdown.json $out/stagec_breakdown_${v}_$i.json
  done
done
git checkout bench/results/stage_breakdown.md bench/results/stage_breakdown.json
echo "== done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
