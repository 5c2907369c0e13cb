"""Soak: 1000 swaps in one worker process; RSS and open file descriptors before and after.

Each swap writes a new manifest generation that changes both stages' settings (so both are
rebuilt: a Rust add_header and a Go request_id, new instances each time), reloads it the
way a worker's watcher does, and sends a request through the new pipeline. Target: RSS
growth at most 10 MB, no growth in open file descriptors.

Usage: .venv/bin/python bench/soak_swaps.py [--swaps N] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import falcon.testing  # noqa: E402

from bench import harness  # noqa: E402
from mwhost import WasmMiddleware  # noqa: E402
from mwhost.registry import StageEntry, example_module  # noqa: E402
from mwhost.runtime import Runtime  # noqa: E402
from mwhost.settings import Settings  # noqa: E402
from mwhost.watch import LivePipeline  # noqa: E402

WARMUP_SWAPS = 20


def rss_kib() -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def soak(swaps: int, sample_every: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        live = LivePipeline.from_settings(Settings(data_dir=pathlib.Path(folder)),
                                          Runtime(parallel_compilation=False))
        app = falcon.App(middleware=[WasmMiddleware(live.holder)])
        app.add_sink(lambda req, resp, **_: setattr(resp, "text", "ok"), r"/")
        client = falcon.testing.TestClient(app)
        rust = live.store.put(example_module("add_header").read_bytes())
        go = live.store.put(example_module("request_id").read_bytes())

        def swap(i: int) -> None:
            entries = [
                StageEntry(name="rid", sha256=go, config={"header": f"x-rid-{i % 2}"}, origin="admin"),
                StageEntry(name="add", sha256=rust, config={"response_headers": {"x-v": str(i % 2)}}, origin="admin"),
            ]
            live.manifests.update(lambda m: m.with_stages(entries), source="soak")
            assert live.reload()
            result = client.simulate_get("/")
            assert result.status_code == 200 and result.headers["x-v"] == str(i % 2), result.text

        for i in range(WARMUP_SWAPS):
            swap(i)
        gc.collect()
        samples = [(0, rss_kib(), open_fds())]
        started = time.perf_counter()
        for i in range(1, swaps + 1):
            swap(i)
            if i % sample_every == 0:
                gc.collect()
                samples.append((i, rss_kib(), open_fds()))
        elapsed = time.perf_counter() - started
        live.close()
    return {"swaps": swaps, "seconds": elapsed, "samples": samples,
            "rss_growth_kib": samples[-1][1] - samples[0][1], "fd_growth": samples[-1][2] - samples[0][2]}


def report(result: dict) -> str:
    first, last = result["samples"][0], result["samples"][-1]
    rows = "\n".join(f"| {i} | {rss / 1024:.1f} | {fds} |" for i, rss, fds in result["samples"])
    verdict_rss = "met" if result["rss_growth_kib"] <= 10 * 1024 else "MISSED"
    verdict_fd = "met" if result["fd_growth"] <= 0 else "MISSED"
    return f"""# Soak: {result['swaps']} swaps in one worker

{{header}}Each swap rebuilds both stages (Rust add_header, Go request_id) with new settings,
reloads the manifest as a worker's watcher does, and serves one request. {result['swaps']} swaps
took {result['seconds']:.1f} s ({result['seconds'] / result['swaps'] * 1000:.1f} ms per swap).

| after swap | RSS MiB | open fds |
|---|---|---|
{rows}

- RSS growth: **{result['rss_growth_kib'] / 1024:.2f} MiB** ({first[1] / 1024:.1f} -> {last[1] / 1024:.1f}); target at most 10 MB: {verdict_rss}
- open file descriptors: {first[2]} -> {last[2]} (growth {result['fd_growth']}); target no growth: {verdict_fd}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swaps", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="10 swaps; checks the code, writes nothing")
    args = parser.parse_args()
    swaps = 10 if args.smoke else args.swaps
    result = soak(swaps, sample_every=max(1, swaps // 10))
    markdown = report(result)
    if args.smoke:
        print(markdown.replace("{header}", ""))
        return
    path = harness.write("soak_swaps", harness.argv_command(), {"result": result}, markdown)
    print(path.read_text())


if __name__ == "__main__":
    main()
