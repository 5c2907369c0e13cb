"""In-process A/B of the epoch ticker (issue 13 round 4): the demo echo app with 0 or 3 Rust
add_header stages called as a WSGI app in one thread, interleaved rounds, with the ticker
as a Python thread (ticker.ThreadTicker), with no ticker, and with two tickers that need no
GIL: a POSIX timer whose glibc SIGEV_THREAD notification calls wasmtime_engine_increment_epoch
directly (a prototype; glibc starts a thread per expiry) and the C thread of
host/runtime/_ticker.c (ticker.NativeTicker, the default since round 4).

Usage: .venv/bin/python bench/results/issue13_round4/tput_ticker_inprocess.py [ROUNDS] [CALLS]
"""
import ctypes
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from bench import stage_breakdown as sb  # noqa: E402
from mwhost.runtime import default_runtime, ticker  # noqa: E402
from wasmtime import _ffi as ffi  # noqa: E402

libc = ctypes.CDLL(None, use_errno=True)


class SigEvent(ctypes.Structure):
    _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                ("function", ctypes.c_void_p), ("attributes", ctypes.c_void_p), ("_pad", ctypes.c_int * 8)]


class TimeSpec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class ITimerSpec(ctypes.Structure):
    _fields_ = [("interval", TimeSpec), ("value", TimeSpec)]


def glibc_timer(engine):
    fn = ctypes.cast(ffi.dll.wasmtime_engine_increment_epoch, ctypes.c_void_p).value
    event = SigEvent(value=ctypes.cast(engine.ptr(), ctypes.c_void_p).value, notify=2, function=fn)
    timer = ctypes.c_void_p()
    assert libc.timer_create(1, ctypes.byref(event), ctypes.byref(timer)) == 0
    spec = ITimerSpec(TimeSpec(0, 10_000_000), TimeSpec(0, 10_000_000))
    assert libc.timer_settime(timer, 0, ctypes.byref(spec), None) == 0
    return timer


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    environ = sb.falcon.testing.create_environ(path="/bench/items", query_string="limit=10", headers=sb.sixteen_headers())
    with tempfile.TemporaryDirectory() as folder:
        apps = {n: sb._wsgi(sb._app(pathlib.Path(folder), "echo", n), environ) for n in ("none", "rust3")}
        runtime = default_runtime()
        engine = runtime.plain.engine

        def python_ticker():
            runtime.stop_ticker()
            started = ticker.ThreadTicker(engine)
            return started.stop

        def c_thread():
            runtime.stop_ticker()
            started = ticker.NativeTicker(engine)
            return started.stop

        def no_ticker():
            runtime.stop_ticker()
            return lambda: None

        def c_timer():
            runtime.stop_ticker()
            timer = glibc_timer(engine)
            return lambda: libc.timer_delete(timer)

        variants = {"python_ticker": python_ticker, "no_ticker": no_ticker, "glibc_timer": c_timer, "c_thread": c_thread}
        samples = {(v, a): [] for v in variants for a in apps}
        cpu = {(v, a): [] for v in variants for a in apps}
        for run in apps.values():
            for _ in range(500):
                run()
        for r in range(rounds):
            for v, start in variants.items():
                stop = start()
                time.sleep(0.05)
                for a, run in apps.items():
                    c0, t0 = time.process_time(), time.perf_counter()
                    for _ in range(calls):
                        run()
                    samples[(v, a)].append((time.perf_counter() - t0) / calls * 1e6)
                    cpu[(v, a)].append((time.process_time() - c0) / calls * 1e6)
                stop()
        print(f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load {os.getloadavg()}, {rounds} rounds x {calls} calls")
        print("| ticker | app | wall us/request (median) | process CPU us/request | 3 stages add, us |")
        print("|---|---|---|---|---|")
        for v in variants:
            base = statistics.median(samples[(v, "none")])
            for a in apps:
                m = statistics.median(samples[(v, a)])
                print(f"| {v} | {a} | {m:.2f} | {statistics.median(cpu[(v, a)]):.2f} | {m - base:+.2f} |")
        runtime.stop_ticker()


if __name__ == "__main__":
    main()
