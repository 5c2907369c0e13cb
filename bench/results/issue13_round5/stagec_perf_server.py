"""perf record of both sync workers during a 4 s wrk run with N Rust stages (section 4 of stagec_README.md).

Usage: .venv/bin/python bench/results/issue13_round5/stagec_perf_server.py N OUT.data; then
perf report -i OUT.data --no-children --sort dso -F sample,dso (samples x 500 us / requests)."""
import os, pathlib, subprocess, sys, tempfile
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))
from bench import servers
n = int(sys.argv[1]); out = sys.argv[2]
with tempfile.TemporaryDirectory() as tmp:
    folder = pathlib.Path(tmp)
    config = servers.rust_stages_config(folder, n)
    with servers.mwhost_server(folder, config, 2, "sync", 1) as served:
        url = f"http://127.0.0.1:{served.port}/bench/items?limit=10"
        wrk = ["wrk", "-t1", "-c4", "-H", "Connection: close"]
        subprocess.run([*wrk, "-d1s", url], capture_output=True, check=True)
        pids = subprocess.run(["pgrep", "-P", str(served.process.pid)], capture_output=True, text=True).stdout.split()
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "2000", "-o", out, "-p", ",".join(pids), "--", "sleep", "4"])
        run = subprocess.run([*wrk, "-d4s", url], capture_output=True, text=True, check=True)
        perf.wait()
        print(n, "requests", run.stdout.split(" requests in")[0].split()[-1])
