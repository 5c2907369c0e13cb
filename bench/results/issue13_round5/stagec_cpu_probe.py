"""The workers' CPU per request in a real server, A/B: the C request phase on and off.

Adapted from the lead's server_cpu_probe.py: for each round, for each variant (``c``: the
default, ``py``: ``MWHOST_NO_STAGE_C=1``, every stage called in Python; with
``STAGEC_BASE_PKG=DIR`` also ``base``: the server imports ``mwhost`` from DIR (PYTHONPATH), a
folder holding an ``mwhost`` link to another tree's host/ with its extensions built in place,
e.g. main before this round), for each stage
count, a fresh ``mwhost serve`` (2 workers, WORKER_CLASS) with that many Rust add_header
stages, a 1 s wrk warm-up, then a 3 s wrk run (``-t1 -c4``, ``Connection: close``, the demo
echo at /bench/items?limit=10); the workers' utime + stime from /proc (all threads) before
and after the run, per request. The order of variants alternates between rounds. Medians
at the end, with the load average before and after.

Usage (from the repository root):
[STAGEC_BASE_PKG=DIR] .venv/bin/python bench/results/issue13_round5/stagec_cpu_probe.py sync ROUNDS 0 3
"""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402

#: variant -> the server's environment
VARIANTS = {"c": {"MWHOST_NO_STAGE_C": "0"}, "py": {"MWHOST_NO_STAGE_C": "1"}}
if os.environ.get("STAGEC_BASE_PKG"):
    VARIANTS["base"] = {"MWHOST_NO_STAGE_C": "0", "PYTHONPATH": os.environ["STAGEC_BASE_PKG"]}


def cpu(pid: str) -> list[int]:
    """utime, stime (ticks), voluntary and involuntary context switches over all threads."""
    total = [0, 0, 0, 0]
    for task in os.listdir(f"/proc/{pid}/task"):
        stat = open(f"/proc/{pid}/task/{task}/stat").read().rsplit(")", 1)[1].split()
        status = open(f"/proc/{pid}/task/{task}/status").read()
        total[0] += int(stat[11])
        total[1] += int(stat[12])
        total[2] += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        total[3] += int(status.split("nonvoluntary_ctxt_switches:")[1].split()[0])
    return total


def point(worker_class: str, stages: int, variant: str) -> dict:
    os.environ.pop("PYTHONPATH", None)
    os.environ.update(VARIANTS[variant])
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        config = servers.rust_stages_config(folder, stages)
        threads = 2 if worker_class == "gthread" else 1
        with servers.mwhost_server(folder, config, 2, worker_class, threads) as served:
            url = f"http://127.0.0.1:{served.port}/bench/items?limit=10"
            wrk = ["wrk", "-t1", "-c4", "-H", "Connection: close"]
            subprocess.run([*wrk, "-d1s", url], capture_output=True, check=True)
            pids = subprocess.run(["pgrep", "-P", str(served.process.pid)], capture_output=True,
                                  text=True).stdout.split()
            pids = [pid for pid in pids if len(os.listdir(f"/proc/{pid}/task")) > 1]  # the workers
            # which tree the workers run: the _accel extension they mapped
            mapped = [line.split()[-1] for line in open(f"/proc/{pids[0]}/maps") if "_accel" in line]
            before = [cpu(pid) for pid in pids]
            run = subprocess.run([*wrk, "-d3s", url], capture_output=True, text=True, check=True)
            after = [cpu(pid) for pid in pids]
    requests = int(run.stdout.split(" requests in")[0].split()[-1])
    delta = [sum(a[k] - b[k] for a, b in zip(after, before)) for k in range(4)]
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    return {"rps": requests / 3, "utime": delta[0] * tick_us / requests, "stime": delta[1] * tick_us / requests,
            "cpu": (delta[0] + delta[1]) * tick_us / requests, "vol": delta[2] / requests,
            "invol": delta[3] / requests, "tree": mapped[0].split("/host/")[0] if mapped else "?"}


def main() -> None:
    worker_class, rounds, counts = sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3:]]
    print(f"load average before: {os.getloadavg()}", flush=True)
    results: dict[tuple, list[dict]] = {}
    for round_ in range(rounds):
        variants = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
        os.environ.pop("PYTHONPATH", None)
        for variant in variants:
            for count in counts:
                result = point(worker_class, count, variant)
                results.setdefault((variant, count), []).append(result)
                print(f"round {round_} {variant:>2} {count} stages {worker_class}: rps {result['rps']:.0f} "
                      f"cpu us/req {result['cpu']:.0f} (utime {result['utime']:.0f} stime {result['stime']:.0f}) "
                      f"vol {result['vol']:.2f} invol {result['invol']:.2f} ({result['tree']})", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print("| variant | stages | requests/s (median) | worker CPU us/request (median) | utime | stime | rounds |")
    print("|---|---|---|---|---|---|---|")
    for (variant, count), runs in sorted(results.items()):
        med = {key: statistics.median(r[key] for r in runs) for key in ("rps", "cpu", "utime", "stime")}
        print(f"| {variant} | {count} | {med['rps']:.0f} | {med['cpu']:.0f} | {med['utime']:.0f} | "
              f"{med['stime']:.0f} | {len(runs)} |")
    for variant in VARIANTS:
        base = [r["cpu"] for r in results.get((variant, 0), [])]
        for count in counts:
            if count and base and (variant, count) in results:
                added = statistics.median(r["cpu"] for r in results[(variant, count)]) - statistics.median(base)
                print(f"{variant}: {count} stages add {added:+.0f} us of worker CPU per request")


if __name__ == "__main__":
    main()
