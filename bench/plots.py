"""PNG plots of the suite's results (matplotlib, no display needed)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110
COLOURS = {"none": "#888888", "python": "#3776ab", "wat_noop": "#aaaaaa", "rust": "#ce422b", "go": "#00add8",
           "rust_public": "#f0a04b", "extism": "#6c4ab6", "call_fast": "#ce422b", "call_public": "#f0a04b",
           "call_extism": "#6c4ab6"}


def _short(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _bars(ax, names, values, colours, unit: str) -> None:
    bars = ax.barh(names, values, color=colours)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    top = max(values) if values else 1
    for bar, value in zip(bars, values):
        ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, f"{value:.1f}",
                va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15)
    ax.grid(axis="x", alpha=0.3)


def stage_cost(section: dict, path: pathlib.Path) -> None:
    """Added cost per request of each stage kind, and the guest call alone."""
    derived = section["summary"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    names = [n for n in derived["added_us"] if n != "none"]
    _bars(left, names, [derived["added_us"][n] for n in names], [COLOURS[n] for n in names],
          "added per request vs no middleware, us (median)")
    left.set_title("Whole stage through the WSGI app (1 KiB of headers)", fontsize=10)
    calls = list(derived["call_us"])
    _bars(right, calls, [derived["call_us"][n] for n in calls], [COLOURS[n] for n in calls], "us per call (median)")
    right.set_title("Guest call alone (same 848-byte request)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def throughput(section: dict, path: pathlib.Path) -> None:
    """Requests/s and p50/p99 latency per server point, sync and gthread side by side."""
    points = section["points"]
    classes = [wc for wc in ("sync", "gthread") if any(p["worker_class"] == wc for p in points.values())]
    servers = []
    for point in points.values():
        key = (point["kind"], point["count"])
        if key not in servers:
            servers.append(key)
    names = [f"{n} Rust" if kind == "rust" else f"{n} native Py" for kind, n in servers]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(classes)
    for c, worker_class in enumerate(classes):
        found = [next((p for p in points.values() if (p["kind"], p["count"]) == key
                       and p["worker_class"] == worker_class), None) for key in servers]
        xs = [i + (c - (len(classes) - 1) / 2) * width for i in range(len(servers))]
        rps = [p["rps"] if p else 0 for p in found]
        axes[0].bar(xs, rps, width, label=worker_class)
        for x, value in zip(xs, rps):
            axes[0].text(x, value, f"{value:.0f}", ha="center", va="bottom", fontsize=7)
        axes[1].bar(xs, [p["p99_ms"] if p else 0 for p in found], width, alpha=0.35,
                    color=f"C{c}", label=f"{worker_class} p99")
        axes[1].bar(xs, [p["p50_ms"] if p else 0 for p in found], width * 0.5, color=f"C{c}",
                    label=f"{worker_class} p50")
    for ax in axes:
        ax.set_xticks(range(len(servers)), names, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("requests/s (median of rounds)")
    axes[0].set_title(f"gunicorn, {section['workers']} workers, wrk -c{section['connections']}", fontsize=10)
    axes[1].set_ylabel("latency, ms")
    axes[1].set_title("latency p50 (narrow) and p99 (wide)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def swap_load(section: dict, path: pathlib.Path) -> None:
    """Requests/s and errors per interval, swap moments as vertical lines."""
    series = section["series"]
    fig, ax = plt.subplots(figsize=(11, 4))
    for at in section["swap_at_s"]:
        ax.axvline(at, color="#bbbbbb", linewidth=0.8, zorder=0)
    ax.plot(series["t_s"], series["rps"], drawstyle="steps-post", color="C0", label="requests/s (ok)")
    ax.set_xlabel("seconds")
    ax.set_ylabel(f"requests/s per {section['interval_s'] * 1000:.0f} ms interval")
    ax.set_ylim(bottom=0)
    errors = ax.twinx()
    errors.bar(series["t_s"], series["errors"], width=section["interval_s"], align="edge", color="C3",
               alpha=0.7, label="errors")
    errors.set_ylabel("errors per interval", color="C3")
    errors.set_ylim(0, max(5, max(series["errors"], default=0) * 1.2))
    ax.set_title(f"{section['swaps']} swaps under load (grey lines: manifest writes); "
                 f"{section['errors']} errors in {section['requests']} requests", fontsize=10)
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = errors.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def memory(section: dict, path: pathlib.Path) -> None:
    """RSS per worker over the swaps (and open fds)."""
    samples = section["samples"]
    fig, (ax, fds) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    for pid in samples[0]["rss_kib"]:
        swaps = [s["swap"] for s in samples]
        ax.plot(swaps, [s["rss_kib"][pid] / 1024 for s in samples], marker=".", markersize=3,
                label=f"worker {pid}")
        fds.plot(swaps, [s["fds"][pid] for s in samples], marker=".", markersize=3, label=f"worker {pid}")
    ax.set_xlabel("swaps")
    ax.set_ylabel("RSS, MiB")
    ax.set_ylim(bottom=0)
    title = f"RSS per worker over {section['swaps']} swaps"
    if section.get("stalled"):
        title += f" (stopped: a worker stalled at swap {section['stalled']['swap']})"
    ax.set_title(title, fontsize=10)
    fds.set_xlabel("swaps")
    fds.set_ylabel("open file descriptors")
    fds.set_ylim(bottom=0)
    fds.set_title("open fds per worker", fontsize=10)
    for axis in (ax, fds):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def cold_start(section: dict, path: pathlib.Path) -> None:
    """Compile vs load from cache vs activation vs new instance, log scale."""
    guests = list(section["instantiate"])
    kinds = [("compile_ms", "compile"), ("load_cached_ms", "load .cwasm"), ("instance_ms", "new instance")]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / (len(kinds) + 1)
    for k, (key, name) in enumerate(kinds):
        values = [section["instantiate"][g][key] for g in guests]
        xs = [i + (k - len(kinds) / 2) * width for i in range(len(guests))]
        ax.bar(xs, values, width, label=name)
        for x, value in zip(xs, values):
            ax.text(x, value, _short(value), ha="center", va="bottom", fontsize=7)
    activation = [section["activation_ms"].get(g, 0) for g in guests]
    xs = [i + (len(kinds) / 2) * width for i in range(len(guests))]
    ax.bar(xs, activation, width, label="activation from cache")
    for x, value in zip(xs, activation):
        ax.text(x, value, _short(value), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ms (median, log scale)")
    ax.set_xticks(range(len(guests)), guests)
    ax.set_title("Cold start: compile once per machine vs cached activation per swap", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def all_plots(results: dict, folder: pathlib.Path) -> list[pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, draw in (("stage_cost", stage_cost), ("throughput", throughput), ("swap_load", swap_load),
                       ("memory_swaps", memory), ("cold_start", cold_start)):
        if name in results:
            path = folder / f"{name}.png"
            draw(results[name], path)
            made.append(path)
    return made
