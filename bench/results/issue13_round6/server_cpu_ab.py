"""Worker CPU per request in a real server for variants x stage counts, interleaved (issue 13 round 6).

Each point is round 5's stagec_cpu_probe.point (a fresh ``mwhost serve``, 2 workers, a 1 s
wrk warm-up, a 3 s ``wrk -t1 -c4 -H "Connection: close"`` run on the demo echo, the
workers' utime + stime from /proc). A variant is the server's environment: ``base`` imports
``mwhost`` from /tmp/r6/basepkg (a link to a worktree of the code before this round, its
extensions and guests built in place), ``main`` this tree, the others a worktree with
apply_hacks.py's switches (/tmp/r6/hackpkg). Each variant's servers run its own tree's
add_header.wasm. Rounds alternate the order; medians at the end.

Usage (repository root): .venv/bin/python bench/results/issue13_round6/server_cpu_ab.py
       sync|gthread ROUNDS VARIANT:STAGES ...   e.g. sync 6 base:0 base:3 main:0 main:3"""
import os, pathlib, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "issue13_round5"))
import stagec_cpu_probe as P
VARIANTS = {
    "base": {"PYTHONPATH": "/tmp/r6/basepkg"},
    "main": {},
    "hack": {"PYTHONPATH": "/tmp/r6/hackpkg"},
    "noguest": {"PYTHONPATH": "/tmp/r6/hackpkg", "HACK_SKIP_GUEST": "1"},
    "reuse": {"PYTHONPATH": "/tmp/r6/hackpkg", "HACK_REUSE_INPUT": "1"},
    "nopipe": {"PYTHONPATH": "/tmp/r6/hackpkg", "HACK_SKIP_PIPELINE": "1"},
    "norepack": {"PYTHONPATH": "/tmp/r6/hackpkg", "HACK_SKIP_REPACK": "1"},
    "nometer": {"PYTHONPATH": "/tmp/r6/hackpkg", "HACK_SKIP_METER": "1"},
    "nowrite": {"PYTHONPATH": "/tmp/r6/hackpkg", "HACK_SKIP_WRITE": "1"},
    "noresp": {"PYTHONPATH": "/tmp/r6/hackpkg", "HACK_SKIP_RESP": "1"},
}
for extra in os.environ.get("PROBE_EXTRA", "").split(";"):
    if extra:
        name, pkg = extra.split("=", 1)
        VARIANTS[name] = {"PYTHONPATH": pkg}
ALL_KEYS = {k for v in VARIANTS.values() for k in v}
P.VARIANTS = VARIANTS
orig_point = P.point
from bench import servers as S
from mwhost.registry import example_module as _main_example
def point(wc, stages, variant):
    for k in ALL_KEYS: os.environ.pop(k, None)
    pkg = VARIANTS[variant].get("PYTHONPATH")
    # the variant's own guest build (base keeps the wasm built before this round)
    S.example_module = (lambda name, _p=pkg: pathlib.Path(_p) / "mwhost" / "examples" / f"{name}.wasm") if pkg else _main_example
    return orig_point(wc, stages, variant)
wc, rounds = sys.argv[1], int(sys.argv[2])
pts = [(a.split(":")[0], int(a.split(":")[1])) for a in sys.argv[3:]]
print(time.strftime("%H:%M:%S"), "load", os.getloadavg(), flush=True)
res = {p: [] for p in pts}
for r in range(rounds):
    order = pts if r % 2 == 0 else list(reversed(pts))
    for v, n in order:
        got = point(wc, n, v)
        res[(v, n)].append(got)
        print(f"  r{r} {v}:{n} rps {got['rps']:.0f} cpu {got['cpu']:.0f} tree {got['tree'][-12:]}", flush=True)
print(time.strftime("%H:%M:%S"), "load", os.getloadavg())
for (v, n), runs in res.items():
    print(f"| {v} | {n} | rps {statistics.median(r['rps'] for r in runs):.0f} | cpu {statistics.median(r['cpu'] for r in runs):.1f} | vol {statistics.median(r['vol'] for r in runs):.2f} |")
