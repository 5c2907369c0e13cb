#!/bin/bash
# ab_cold.sh ROUNDS: split.py alternately on the base tree and on main; the rust3/rust1 added cold/warm
cd "$(dirname "$0")/../../.."
for r in $(seq 1 $1); do
  for v in base main; do
    if [ $v = base ]; then out=$(PYTHONPATH=/tmp/r6/basepkg .venv/bin/python bench/results/issue13_round6/cold_split.py); else out=$(.venv/bin/python bench/results/issue13_round6/cold_split.py); fi
    echo "$out" | python3 -c "
import sys,ast
d={}
for l in sys.stdin:
    k,v=l.rsplit(' ',1); d[ast.literal_eval(k)]=float(v)
print('$v', 'warm rust1 %+.1f rust3 %+.1f | cold rust1 %+.1f rust3 %+.1f' % (d[('rust1',False)]-d[('none',False)], d[('rust3',False)]-d[('none',False)], d[('rust1',True)]-d[('none',True)], d[('rust3',True)]-d[('none',True)]))"
  done
done
