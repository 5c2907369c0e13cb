"""Swaps under load: requests/s and errors over time with the swap moments marked.

``mwhost serve`` (sync workers) with a Rust add_header and a Go request_id stage; a bounded
client loop (threads, one connection per request, loopback) sends GETs the whole time and
records every answer. After a quiet second, the operator writes ``swaps`` manifest
generations at a fixed interval, each changing both stages' config (so every worker builds
both stages anew from the compile cache and rebinds). An answer counts as an error unless
it is a 200 carrying the response header of one of the two configs. Per-interval requests
and errors, the write times and each worker's log time for serving each generation
(propagation) are recorded.

Usage: .venv/bin/python bench/swap_load.py [--swaps N] [--smoke]
"""

from __future__ import annotations

import argparse
import http.client
import pathlib
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import servers  # noqa: E402
from mwhost.registry import ManifestStore, ModuleStore, StageEntry, example_module  # noqa: E402

WORKERS = 2
CLIENTS = 4
INTERVAL_S = 0.25  # bucket width of the time series
SWAP_EVERY_S = 0.2
QUIET_S = 1.0  # load before the first and after the last swap


def write_config(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("add_header", "request_id"):
        (folder / f"{name}.wasm").write_bytes(example_module(name).read_bytes())
    (folder / "mwhost.toml").write_text(
        '[[middleware]]\nname = "rid"\nmodule = "request_id.wasm"\n[middleware.config]\nheader = "x-rid-0"\n\n'
        '[[middleware]]\nname = "add"\nmodule = "add_header.wasm"\n[middleware.config]\n'
        'response_headers = { "x-v" = "0" }\n')
    return folder / "mwhost.toml"


class Operator:
    """Writes manifest generations the way any writer does (tests/server/test_swap.py's way)."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        modules = ModuleStore(data_dir / "modules")
        self.manifests = ManifestStore(data_dir)
        self.rust = modules.put(example_module("add_header").read_bytes())
        self.go = modules.put(example_module("request_id").read_bytes())

    def swap(self, i: int) -> int:
        """Generation ``i``'s pipeline: both stages with config variant ``i % 2``."""
        entries = [
            StageEntry(name="rid", sha256=self.go, config={"header": f"x-rid-{i % 2}"}, origin="admin"),
            StageEntry(name="add", sha256=self.rust, config={"response_headers": {"x-v": str(i % 2)}},
                       origin="admin"),
        ]
        return self.manifests.update(lambda m: m.with_stages(entries), source="bench").generation


class Load:
    """``CLIENTS`` threads sending GET / until stopped; every answer as (time, ok)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.answers: list[tuple[float, bool]] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]

    def _client(self) -> None:
        record = self.answers.append
        while not self.stop.is_set():
            ok = False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                try:
                    conn.request("GET", "/bench/items")
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200 and response.getheader("x-v") in ("0", "1")
                    if not ok and len(self.failures) < 20:
                        self.failures.append(f"{response.status} x-v={response.getheader('x-v')}")
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException) as err:
                if len(self.failures) < 20:
                    self.failures.append(repr(err))
            record((time.time(), ok))

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def run(swaps: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        config = write_config(folder)
        with servers.mwhost_server(folder, config, WORKERS) as served:
            operator = Operator(folder / "data")
            follower = servers.LogFollower(served.log)
            written: dict[int, float] = {}
            with Load(served.port) as load:
                started = time.time()
                time.sleep(QUIET_S)
                for i in range(1, swaps + 1):
                    at = time.time()
                    written[operator.swap(i)] = at
                    time.sleep(max(0.0, at + SWAP_EVERY_S - time.time()))
                time.sleep(QUIET_S)
            ended = time.time()
            follower.poll()
            workers = sorted(served.worker_pids())
    return summarise(load.answers, load.failures, written, follower.served, started, ended, workers)


def summarise(answers, failures, written, served_at, started, ended, workers) -> dict:
    buckets = max(1, int((ended - started) / INTERVAL_S))  # whole intervals only
    ok_counts, error_counts = [0] * buckets, [0] * buckets
    for at, ok in answers:
        index = int((at - started) / INTERVAL_S)
        if 0 <= index < buckets:
            (ok_counts if ok else error_counts)[index] += 1
        elif not ok:  # an error after the last whole interval still counts
            error_counts[-1] += 1
    delays = []
    for generation, at in written.items():
        times = served_at.get(generation, {})
        if len(times) >= len(workers):
            delays.append((max(times.values()) - at) * 1000)
    return {
        "workers": len(workers), "clients": CLIENTS, "interval_s": INTERVAL_S, "swap_every_s": SWAP_EVERY_S,
        "swaps": len(written), "requests": len(answers), "errors": sum(not ok for _, ok in answers),
        "failures": failures, "seconds": ended - started,
        "rps": len(answers) / (ended - started),
        "series": {"t_s": [round(i * INTERVAL_S, 3) for i in range(buckets)],
                   "rps": [n / INTERVAL_S for n in ok_counts],
                   "errors": error_counts},
        "swap_at_s": [round(at - started, 4) for at in written.values()],
        "written_generations": list(written),
        "propagated": len(delays),
        "generations_per_worker": {str(pid): sum(pid in t for g, t in served_at.items() if g in written)
                                   for pid in workers},
        "last_generation_per_worker": {str(pid): max((g for g, t in served_at.items() if pid in t), default=None)
                                       for pid in workers},
        "propagation_ms": {"p50": statistics.median(delays) if delays else None,
                           "max": max(delays) if delays else None, "all": delays},
    }


def report(data: dict) -> str:
    prop = data["propagation_ms"]
    spread = (f"propagation (write -> last worker serving it) p50 {prop['p50']:.0f} ms, max {prop['max']:.0f} ms"
              if prop["p50"] is not None else "no generation reached every worker")
    return (f"{data['swaps']} swaps every {data['swap_every_s'] * 1000:.0f} ms under load "
            f"({data['clients']} client threads, {data['workers']} sync workers): "
            f"{data['requests']} requests in {data['seconds']:.1f} s ({data['rps']:.0f}/s), "
            f"**{data['errors']} errors**; {data['propagated']} of {data['swaps']} generations were logged by "
            f"every worker (a worker that finds several new generations at once applies only the newest; "
            f"generations applied per worker {data.get('generations_per_worker')}, last generation per worker "
            f"{data.get('last_generation_per_worker')} of {max(data['written_generations'], default=None)}); {spread}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swaps", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="3 swaps; writes nothing")
    args = parser.parse_args()
    print(report(run(3 if args.smoke else args.swaps)))


if __name__ == "__main__":
    main()
