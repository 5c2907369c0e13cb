"""Memory over many swaps under a real gunicorn: RSS (and open fds) per worker over time.

``mwhost serve`` with 2 sync workers and the same two stages as the swap-under-load run
(Rust add_header, Go request_id). The operator writes ``swaps`` generations one after
another, each changing both stages' config; after each write it waits until every worker
logged that it serves the new generation (so each worker really rebuilt both stages,
``swaps`` times), then sends a few requests. Every ``sample_every`` swaps it reads VmRSS and
the fd count of each worker from /proc. The workers must be the same processes at the end
(a restarted worker would hide a leak). A generation that does not reach every worker
within ``STALL_S`` stops the run (a worker stopped applying swaps): the result says after
how many swaps and which worker. Target: RSS growth at most 10 MB per worker, from the first
swap every worker applied (``baseline``) to the end.

``gc_control`` repeats the swaps in this one process (the same LivePipeline a worker runs,
no gunicorn) and reads RSS and the open ``.cwasm`` files before and after one
``gc.collect()``: whether replaced pipelines wait for Python's cyclic garbage collector.

Usage: .venv/bin/python bench/memory_swaps.py [--swaps N] [--smoke]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import servers  # noqa: E402
from bench.swap_load import Operator, write_config  # noqa: E402

WORKERS = 2
REQUESTS_PER_SWAP = 4
TARGET_KIB = 10 * 1000 * 1000 // 1024  # 10 MB
STALL_S = 10.0


def run(swaps: int, sample_every: int, control_swaps: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        with servers.mwhost_server(folder, write_config(folder), WORKERS) as served:
            operator = Operator(folder / "data")
            follower = servers.LogFollower(served.log)
            pids = sorted(served.worker_pids())
            samples: list[dict] = []
            stalled: dict | None = None
            started = time.monotonic()

            def sample(swap: int) -> None:
                samples.append({"swap": swap, "t_s": round(time.monotonic() - started, 3),
                                "rss_kib": {str(pid): servers.rss_kib(pid) for pid in pids},
                                "fds": {str(pid): servers.open_fds(pid) for pid in pids},
                                "cwasm_fds": {str(pid): servers.open_files_ending(pid, ".cwasm") for pid in pids}})

            for _ in range(REQUESTS_PER_SWAP):
                served.request("GET", "/bench/items")
            sample(0)
            done = 0
            for i in range(1, swaps + 1):
                generation = operator.swap(i)
                if follower.wait_all(generation, WORKERS, timeout=STALL_S) is None:
                    behind = sorted(set(map(str, pids)) - set(map(str, follower.served.get(generation, {}))))
                    last = {pid: max((g for g, t in follower.served.items() if int(pid) in t), default=None)
                            for pid in behind}
                    stalled = {"swap": i, "generation": generation, "workers_behind": behind,
                               "last_generation_served": last}
                    sample(i)
                    break
                done = i
                for _ in range(REQUESTS_PER_SWAP):
                    status, headers, _ = served.request("GET", "/bench/items")
                    assert status == 200 and headers.get("x-v") in ("0", "1"), (status, headers)
                if i == 1 or i % sample_every == 0 or i == swaps:
                    sample(i)
            elapsed = time.monotonic() - started
            same_workers = sorted(served.worker_pids()) == pids
    first = baseline(samples)
    growth = {pid: samples[-1]["rss_kib"][pid] - first["rss_kib"][pid] for pid in first["rss_kib"]}
    fd_growth = {pid: samples[-1]["fds"][pid] - first["fds"][pid] for pid in first["fds"]}
    control = gc_control(control_swaps) if control_swaps else None
    return {"control": control, "workers": WORKERS, "swaps_planned": swaps, "swaps": done, "seconds": elapsed, "samples": samples,
            "stalled": stalled, "same_workers": same_workers,
            "rss_growth_kib": growth, "max_rss_growth_kib": max(growth.values()),
            "fd_growth": fd_growth, "max_fd_growth": max(fd_growth.values())}


def baseline(samples: list[dict]) -> dict:
    """The sample growth counts from: the one after the first swap, which every worker
    applied (both stages built). NOTE: before it a worker may not have built its first
    pipeline yet: one run's swap-0 sample had a worker at 46 MiB with one module mapped, and
    at 64 MiB with both ten swaps later, which a swap-0 baseline counted as growth."""
    return next((s for s in samples if s["swap"] >= 1), samples[0])


def gc_control(swaps: int) -> dict:
    """In one process: RSS and open .cwasm files after ``swaps`` swaps, then after gc.collect()."""
    import gc
    import os

    from mwhost.runtime import Runtime
    from mwhost.settings import Settings
    from mwhost.watch import LivePipeline

    pid = os.getpid()

    def now() -> dict:
        return {"rss_kib": servers.rss_kib(pid), "cwasm_fds": servers.open_files_ending(pid, ".cwasm")}

    runtime = Runtime(parallel_compilation=False)
    with tempfile.TemporaryDirectory() as folder:
        live = LivePipeline.from_settings(Settings(data_dir=pathlib.Path(folder)), runtime)
        operator = Operator(pathlib.Path(folder))
        for i in range(2):  # both modules compiled and loaded once, as in a started worker
            operator.swap(i)
            live.reload()
        gc.collect()
        before = now()
        for i in range(2, swaps + 2):
            operator.swap(i)
            live.reload()
        after = now()
        collected = gc.collect()
        collected_state = now()
        live.close()
    runtime.close_instances()
    return {"swaps": swaps, "before": before, "after_swaps": after, "gc_collected_objects": collected,
            "after_gc": collected_state}


def control_text(control: dict) -> str:
    before, after, collected = control["before"], control["after_swaps"], control["after_gc"]
    return (f"in one process the same {control['swaps']} swaps took RSS from {before['rss_kib'] / 1024:.0f} to "
            f"{after['rss_kib'] / 1024:.0f} MiB with {after['cwasm_fds']} .cwasm files open; one gc.collect() "
            f"freed {control['gc_collected_objects']} objects and brought them to {collected['cwasm_fds']} "
            f"(RSS {collected['rss_kib'] / 1024:.0f} MiB)")


def report(data: dict) -> str:
    rows = []
    first, last = baseline(data["samples"]), data["samples"][-1]
    for pid in first["rss_kib"]:
        peak = max(s["rss_kib"][pid] for s in data["samples"])
        rows.append(f"| {pid} | {first['rss_kib'][pid] / 1024:.1f} | {peak / 1024:.1f} | "
                    f"{last['rss_kib'][pid] / 1024:.1f} | {data['rss_growth_kib'][pid] / 1024:+.2f} | "
                    f"{first['fds'][pid]} -> {last['fds'][pid]} |")
    return ("| worker pid | RSS after the first swap MiB | peak MiB | at end MiB | growth MiB | open fds |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swaps", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="10 swaps; writes nothing")
    args = parser.parse_args()
    swaps = 10 if args.smoke else args.swaps
    data = run(swaps, sample_every=max(1, swaps // 100), control_swaps=5 if args.smoke else 300)
    print(report(data))
    print(f"{data['swaps']} swaps in {data['seconds']:.1f} s; same workers: {data['same_workers']}; "
          f"stalled: {data['stalled']}")


if __name__ == "__main__":
    main()
