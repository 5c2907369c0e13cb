"""In-process, 2 request headers (wrk's): the demo echo with no stage, 1 and 3 Rust stages,
back to back (warm) and with 4 MiB of other memory copied before each request (cold), the
median of 5 rounds x 1000 requests (issue 13 round 6; round 4's tput_cold_cache.py method).

Usage: [PYTHONPATH=/tmp/r6/basepkg] .venv/bin/python bench/results/issue13_round6/cold_split.py"""
import os, pathlib, sys, tempfile, time, statistics
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from bench import stage_breakdown as sb
from mwhost.pipeline import pipeline as pl
from mwhost.web import wsgi_headers
env = sb.falcon.testing.create_environ(path="/bench/items", query_string="limit=10", headers={"User-Agent": "wrk"})
TRASH = bytearray(os.urandom(4 << 20))
clock = time.perf_counter
acc = {}
def timed_method(obj, name, key):
    orig = getattr(obj, name)
    def wrapper(*a, **k):
        s = clock(); r = orig(*a, **k); acc[key] = acc.get(key, 0.0) + clock() - s; return r
    setattr(obj, name, wrapper)
with tempfile.TemporaryDirectory() as folder:
    res = {}
    for pipe in ("none", "rust1", "rust3"):
        app = sb._app(pathlib.Path(folder), "echo", pipe)
        mw = next(m for m in app._unprepared_middleware if hasattr(m, "holder"))
        run = sb._wsgi(app, env)
        for _ in range(300): run()
        # wrap after build (falcon binds methods at prepare time? check by timing)
        pipeline = mw.holder.current
        for cold in (False, True):
            for rnd in range(5):
                acc.clear(); tot = 0.0; n = 1000
                orig_on = type(pipeline).on_request
                for _ in range(n):
                    if cold: bytes(TRASH)
                    s = clock(); run(); tot += clock() - s
                res.setdefault((pipe, cold), []).append(tot / n * 1e6)
    for k, v in res.items(): print(k, f"{statistics.median(v):.1f}")
