"""A/B experiment for issue 13 round 4: 0 vs 3 Rust stages under gunicorn, per variant.

Each variant is a set of environment variables (the XP_* switches of a temporary experiment
patch, or real settings); each point is a fresh ``mwhost serve`` measured exactly as
bench/throughput.py does (2 workers, wrk -t1 -c4, Connection: close), plus:
- the workers' CPU per request, split into the main thread and the other threads (/proc tasks);
- the workers' context switches per request (voluntary, involuntary);
- wrk's own CPU per request (getrusage of children).
Rounds alternate the order; medians over rounds.

Usage: .venv/bin/python bench/results/issue13_round4/tput_ab.py WORKER_CLASS ROUNDS VARIANT[,VARIANT...]
       [--duration S] [--taskset]
VARIANT is NAME or NAME=K1:V1+K2:V2 (environment for the server).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import resource
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from bench import servers, throughput  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def task_stats(pids):
    """(main cpu s, other threads cpu s, voluntary cs, involuntary cs) summed over ``pids``."""
    main = other = vol = invol = 0.0
    for pid in pids:
        for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                status = (task / "status").read_text()
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / TICKS
            if int(task.name) == pid:
                main += cpu
            else:
                other += cpu
            for line in status.splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    invol += int(line.split()[1])
    return main, other, vol, invol


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(folder, worker_class, stages, duration, env, taskset):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        config = servers.rust_stages_config(folder, stages)
        threads = throughput.THREADS if worker_class == "gthread" else 1
        with servers.mwhost_server(folder, config, throughput.WORKERS, worker_class, threads) as served:
            url = served.url + throughput.PATH
            if stages:
                servers.check_headers(served, stages)
            throughput.run_wrk(url, 1.0)
            pids = served.worker_pids()
            if taskset:
                for pid in pids:
                    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
                        os.sched_setaffinity(int(task.name), {0})
            before = task_stats(pids)
            wrk0 = children_cpu()
            result = throughput.run_wrk(url, duration)
            wrk1 = children_cpu()
            after = task_stats(pids)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    n = result["requests"]
    d = [(a - b) for a, b in zip(after, before)]
    return {"rps": result["rps"], "main_us": d[0] / n * 1e6, "other_us": d[1] / n * 1e6,
            "vcs": d[2] / n, "ics": d[3] / n, "wrk_us": (wrk1 - wrk0) / n * 1e6}


def parse_variant(text):
    name, _, spec = text.partition("=")
    env = dict(kv.split(":", 1) for kv in spec.split("+")) if spec else {}
    return name, env


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("worker_class")
    parser.add_argument("rounds", type=int)
    parser.add_argument("variants")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--taskset", action="store_true", help="pin the workers to CPU 0 (wrk stays free)")
    parser.add_argument("--stages", default="0,3")
    args = parser.parse_args()
    variants = dict(parse_variant(v) for v in args.variants.split(","))
    stage_counts = [int(s) for s in args.stages.split(",")]
    if args.taskset:
        os.sched_setaffinity(0, {1})  # this process and wrk (its child) on CPU 1
    points = [(v, n) for v in variants for n in stage_counts]
    raw = {p: [] for p in points}
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC load {os.getloadavg()} "
          f"{args.worker_class} rounds={args.rounds} duration={args.duration} taskset={args.taskset}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            order = points if r % 2 == 0 else list(reversed(points))
            for i, (v, n) in enumerate(order):
                res = measure(pathlib.Path(folder) / f"r{r}-{i}", args.worker_class, n, args.duration,
                              variants[v], args.taskset)
                raw[(v, n)].append(res)
                print(r, v, n, {k: round(x, 2) for k, x in res.items()}, flush=True)
    print(f"# end {time.strftime('%H:%M:%S', time.gmtime())} UTC load {os.getloadavg()}")
    print("| variant | stages | requests/s | kept | main thread CPU us/req | other threads us/req | "
          "vol cs/req | invol cs/req | wrk CPU us/req |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v in variants:
        base = statistics.median(x["rps"] for x in raw[(v, stage_counts[0])])
        for n in stage_counts:
            m = {k: statistics.median(x[k] for x in raw[(v, n)]) for k in raw[(v, n)][0]}
            print(f"| {v} | {n} | {m['rps']:.0f} | {m['rps'] / base * 100:.0f}% | {m['main_us']:.0f} | "
                  f"{m['other_us']:.1f} | {m['vcs']:.2f} | {m['ics']:.2f} | {m['wrk_us']:.0f} |")


if __name__ == "__main__":
    main()
