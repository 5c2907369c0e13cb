"""In-process, 2 request headers (wrk's): the demo echo with no stage and 3 Rust stages, warm and
cold (4 MiB copied before each request); the whole request, process_request (with
Pipeline.on_request inside it) and process_response, medians of 5 x 2000 requests (issue 13
round 7). Usage: [PYTHONPATH=<variant pkg>] .venv/bin/python bench/results/issue13_round7/inprocess_split.py"""
import os, sys, pathlib, tempfile, time, statistics
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from bench import stage_breakdown as sb
from mwhost.web import middleware as M
from mwhost.pipeline import pipeline as PL
env = sb.falcon.testing.create_environ(path="/bench/items", query_string="limit=10", headers={"User-Agent": "wrk", "Connection": "close"})
clock = time.perf_counter_ns
acc = {"preq": 0, "presp": 0, "pipe": 0}
oreq, oresp, opipe = M.WasmMiddleware.process_request, M.WasmMiddleware.process_response, PL.Pipeline.on_request
def preq(self, req, resp):
    s = clock(); oreq(self, req, resp); acc["preq"] += clock() - s
def presp(self, *a):
    s = clock(); oresp(self, *a); acc["presp"] += clock() - s
def pipe(self, st):
    s = clock(); r = opipe(self, st); acc["pipe"] += clock() - s; return r
M.WasmMiddleware.process_request = preq; M.WasmMiddleware.process_response = presp; PL.Pipeline.on_request = pipe
TRASH = bytearray(os.urandom(4 << 20))
with tempfile.TemporaryDirectory() as folder:
    for pipe_kind in ("none", "rust3"):
        app = sb._app(pathlib.Path(folder), "echo", pipe_kind)
        run = sb._wsgi(app, env)
        for _ in range(500): run()
        for cold in (False, True):
            rows = []
            for rnd in range(5):
                for k in acc: acc[k] = 0
                tot = 0; n = 2000
                for _ in range(n):
                    if cold: bytes(TRASH)
                    s = clock(); run(); tot += clock() - s
                rows.append((tot / n / 1000, acc["preq"] / n / 1000, acc["pipe"] / n / 1000, acc["presp"] / n / 1000))
            med = [statistics.median(r[i] for r in rows) for i in range(4)]
            print(pipe_kind, "cold" if cold else "warm", "total %.1f process_request %.1f (pipeline %.1f) process_response %.1f" % tuple(med))
