"""One `mwhost serve` (2 workers) with N Rust add_header stages: a 1 s wrk warm-up, then `perf record
-F 4999 -g` on the workers during a 6 s wrk run (issue 13 round 7); prints requests/s and the
workers' CPU per request (perf's overhead included). Then `perf report -i OUT --sort dso,symbol`.
Usage: .venv/bin/python bench/results/issue13_round7/perf_profile.py N sync|gthread OUT"""
import os, pathlib, subprocess, sys, tempfile, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from bench import servers as S, throughput as T
n = int(sys.argv[1]); wc = sys.argv[2]; out = sys.argv[3]
with tempfile.TemporaryDirectory() as d:
    d = pathlib.Path(d)
    cfg = S.rust_stages_config(d, n)
    with S.mwhost_server(d, cfg, 2, wc, 2 if wc == "gthread" else 1) as srv:
        S.check_headers(srv, n)
        T.run_wrk(srv.url + T.PATH, 1)
        pids = srv.worker_pids()
        perf = subprocess.Popen(["perf", "record", "-F", "4999", "-g", "-o", out, "-p", ",".join(map(str, pids))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        cpu = T.worker_cpu_seconds(pids)
        r = T.run_wrk(srv.url + T.PATH, 6)
        print(n, wc, "rps", r["rps"], "cpu_us", (T.worker_cpu_seconds(pids) - cpu) / r["requests"] * 1e6, "requests", r["requests"])
        perf.send_signal(2); perf.wait()
