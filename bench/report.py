"""The suite's markdown report: machine, command, tables, ratios against the targets, causes."""

from __future__ import annotations

MB_KIB = 10 * 1000 * 1000 / 1024  # 10 MB in KiB


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(r: dict) -> list[dict]:
    """Each target of the issue with what was measured, met or missed, and the measured cause."""
    found = []
    if "stage_cost" in r:
        d = r["stage_cost"]["summary"]
        shared, call = d["shared_python_us"], d["call_us"]
        rust, go = d["added_us"]["rust"], d["added_us"]["go"]
        found.append({
            "target": "the Rust add_header stage adds <= 15 us per request (1 KiB of request headers)",
            "measured": f"{rust:.1f} us", "met": rust <= 15.0,
            "cause": (f"the guest call alone is {call['call_fast']:.1f} us; the rest, {shared:.1f} us, is the host's "
                      f"Python work per request (bench/stage_breakdown.py splits it by step)"),
        })
        found.append({
            "target": "the Go stage within 1.5x of the Rust stage (added per request)",
            "measured": f"{go / rust:.2f}x ({go:.1f} vs {rust:.1f} us)", "met": go <= 1.5 * rust,
            "cause": "the Go guest's own work (TinyGo/Go runtime, msgpack decode) above the Rust guest's",
        })
        # NOTE: issue 13 raised the Extism goal to 4x (from 2x) for the whole stage
        for other, goal, key_call, key_stage in (("Extism", 4.0, "call_extism", "stage_extism_over_rust"),
                                                 ("public API", 12.0, "call_public", "stage_public_over_rust")):
            call_ratio = call[key_call] / call["call_fast"]
            bound = (shared + call[key_call]) / (shared + call["call_fast"])
            found.append({
                "target": f"Rust >= {goal:g}x cheaper than the {other} path: the guest call alone",
                "measured": f"{call_ratio:.1f}x ({call['call_fast']:.1f} vs {call[key_call]:.1f} us)",
                "met": call_ratio >= goal,
                "cause": (f"the guest call on the fast path costs {call['call_fast']:.1f} us, of which the Rust SDK's "
                          f"own work (decoding the 848-byte request, encoding the action) is shared with every "
                          f"path that runs the same module; the {other} call costs {call[key_call]:.1f} us"),
            })
            found.append({
                "target": f"Rust >= {goal:g}x cheaper than the {other} path: the whole stage (added per request)",
                "measured": f"{d[key_stage]:.1f}x ({d['added_us']['rust']:.1f} vs "
                            f"{d['added_us']['extism' if other == 'Extism' else 'rust_public']:.1f} us)",
                "met": d[key_stage] >= goal,
                "cause": (f"both paths pay the same {shared:.1f} us of Python work per request around the guest "
                          f"call (environ headers, packing the request, decoding and applying the action, "
                          f"Falcon middleware glue: the Rust stage's added cost minus its guest call); with only "
                          f"the call differing, the stage ratio comes to about ({shared:.1f} + {call[key_call]:.1f}) / "
                          f"({shared:.1f} + {call['call_fast']:.1f}) = {bound:.1f}x, however cheap the call gets"),
            })
    if "throughput" in r:
        t = r["throughput"]
        cores = int(r["machine"]["cores"])
        per_stage = r.get("stage_cost", {}).get("summary", {}).get("added_us", {}).get("rust")
        for worker_class in ("sync", "gthread"):
            base, three = (t["points"].get(f"{n} Rust stage{'s' if n != 1 else ''}, {worker_class}") for n in (0, 3))
            if not base or not three:
                continue
            kept = three["rps"] / base["rps"]
            implied = (1 / three["rps"] - 1 / base["rps"]) * cores * 1e6 / 3
            request = cores * 1e6 / base["rps"]
            cause = (f"the no-stage server answers {base['rps']:.0f} requests/s: about {request:.0f} us of machine "
                     f"time per request ({cores} cores shared by wrk, the gunicorn workers and the loopback); "
                     f"3 stages cost {implied:.0f} us of machine time per stage per request under load")
            if per_stage is not None:
                cause += f" (in-process, one Rust stage adds {per_stage:.0f} us)"
            found.append({"target": f"3 Rust stages keep >= 85% of the no-middleware requests/s ({worker_class})",
                          "measured": f"{kept * 100:.0f}% ({three['rps']:.0f} vs {base['rps']:.0f} requests/s)",
                          "met": kept >= 0.85, "cause": cause})
    if "swap_load" in r:
        s = r["swap_load"]
        found.append({"target": f"zero errors during {s['swaps']} swaps under load",
                      "measured": f"{s['errors']} errors in {s['requests']} requests",
                      "met": s["errors"] == 0 and s["swaps"] > 0,
                      "cause": "failed answers: " + "; ".join(s["failures"][:5]) if s["failures"] else ""})
        last = max(s["written_generations"], default=None)
        behind = {pid: g for pid, g in s["last_generation_per_worker"].items() if g != last}
        found.append({"target": "(implied) every worker serves the last generation once the swaps stop",
                      "measured": f"last generation per worker {s['last_generation_per_worker']}, written {last}",
                      "met": not behind,
                      "cause": (f"worker(s) {', '.join(behind)} stopped applying generations (last applied: "
                                f"{behind}) and served that stale pipeline for the rest of the run; the answers "
                                f"stayed valid, so no request failed") if behind else ""})
    if "memory_swaps" in r:
        m = r["memory_swaps"]
        grew = m["max_rss_growth_kib"]
        complete = m["swaps"] == m["swaps_planned"] and m["same_workers"]
        from bench.memory_swaps import baseline

        first, last = baseline(m["samples"]), m["samples"][-1]
        cause = []
        if m.get("stalled"):
            st = m["stalled"]
            cause.append(f"after {st['swap'] - 1} swaps, worker(s) {', '.join(st['workers_behind'])} stopped applying "
                         f"new generations (last served: {st['last_generation_served']}; nothing logged within "
                         f"the stall timeout), so the run stopped there")
        if not m["same_workers"]:
            cause.append("a worker was replaced during the run")
        if grew > MB_KIB or m["max_fd_growth"] > 0:
            cwasm = ", ".join(f"{pid}: {first['cwasm_fds'][pid]} -> {last['cwasm_fds'][pid]}"
                              for pid in first["cwasm_fds"])
            cause.append(f"open file descriptors grew by up to {m['max_fd_growth']}; open .cwasm files per worker "
                         f"(start -> end) {cwasm}: compiled modules of replaced pipelines were still mapped, i.e. "
                         f"old pipelines were not freed")
            if m.get("control"):
                from bench.memory_swaps import control_text

                cause.append(control_text(m["control"]) + ": replaced pipelines are freed only by Python's "
                             "cyclic garbage collector, not when a swap drops them")
        found.append({"target": f"RSS growth <= 10 MB per worker over {m['swaps_planned']} swaps",
                      "measured": f"{grew / 1024:+.1f} MiB max over {m['swaps']} swaps",
                      "met": grew <= MB_KIB and complete, "cause": "; ".join(cause)})
    return found


def _machine(r: dict) -> str:
    m, v = r["machine"], r["versions"]
    return (f"- Machine: {m['cpu']}, {m['cores']} cores, {m.get('memory', '?')} RAM, {m['platform']}, "
            f"load average at start {m.get('loadavg', '?')}\n"
            f"- Python {m['python']}; wasmtime-py {v['wasmtime']}, extism {v['extism']} (extism-sys "
            f"{v['extism-sys']}), falcon {v['falcon']}, gunicorn {v['gunicorn']}, msgpack {v['msgpack']}, "
            f"{v['wrk']}, matplotlib {v['matplotlib']}\n"
            f"- Commit {m['commit']}, {m['date']}; the run took {r['seconds']['total'] / 60:.1f} minutes "
            f"({', '.join(f'{k} {s:.0f} s' for k, s in r['seconds'].items() if k != 'total')})")


def _stage_cost(r: dict) -> str:
    from bench import stage_cost

    s = r["stage_cost"]
    d = s["summary"]
    return f"""## 1. Per-stage cost in-process

One process, one Falcon app per scenario, the same GET with 1 KiB of request headers called
as a WSGI app; {s['rounds']} interleaved rounds of {s['calls']} requests per scenario, medians
per request. Every stage does add_header's job (one request header, one response header);
`rust_public` and `extism` are the same stage with only the guest call swapped: wasmtime-py's
public API (`Func.__call__`, `Memory.read/write`) and the Extism Python SDK (`Plugin.call`)
to a WAT plugin against Extism's kernel imports that copies the request in and answers the
same bytes as the Rust module ([extism_guest.py](extism_guest.py); it does less guest work
than the Rust SDK, which decodes the request). The call rows are the guest call alone with
the same 848-byte request bytes.

{stage_cost.tables(s['results'])}

- Rust stage: **{d['added_us']['rust']:.1f} us** added per request, of which the guest call is
  {d['call_us']['call_fast']:.1f} us and the Python work around it {d['shared_python_us']:.1f} us
- Extism / Rust: guest call **{d['call_extism_over_fast']:.1f}x**, whole stage **{d['stage_extism_over_rust']:.1f}x**
- public API / Rust fast path: guest call **{d['call_public_over_fast']:.1f}x**, whole stage
  **{d['stage_public_over_rust']:.1f}x**
- Rust stage / native Python middleware (added cost): {stage_cost.ratio_text(d['rust_over_python'])};
  Rust / WAT no-op: {d['rust_over_wat_noop']:.2f}x (the SDK's share above the ABI's own cost);
  Go / Rust: {d['go_over_rust']:.2f}x

![stage cost](plots/stage_cost.png)
"""


def _throughput(r: dict) -> str:
    from bench import throughput

    t = r["throughput"]
    return f"""## 2. Through gunicorn (wrk)

`mwhost serve` with 0, 1, 3 or 5 Rust add_header stages (each its own headers), and the
same host app with an empty pipeline behind 3 native Python Falcon middlewares doing the
same job ([native_app.py](native_app.py)); {t['workers']} workers, sync or gthread
({t['threads']} threads each). For each point a fresh server, a {t['warmup_s']:g} s warm-up, then
`wrk -t1 -c{t['connections']} -d{t['duration_s']:g}s -H "Connection: close" --latency` on loopback against
the demo echo (a new connection per request: with keep-alive wrk's few connections stick to
whichever gthread worker accepted them, and the same point ranged from 1.3k to 4.3k requests/s);
{t['rounds']} round(s) (order reversed on odd rounds), medians over rounds. wrk ({t['wrk']}) runs
on the same {r['machine']['cores']} cores as the server.

{throughput.table(t)}

![throughput](plots/throughput.png)
"""


def _swap_load(r: dict) -> str:
    from bench import swap_load

    s = r["swap_load"]
    return f"""## 3. Swap under load

`mwhost serve` ({s['workers']} sync workers) with a Go request_id and a Rust add_header stage;
{s['clients']} client threads send GETs (one connection each) the whole time, an answer is an
error unless it is a 200 with the response header of one of the two configs; every
{s['swap_every_s'] * 1000:.0f} ms the operator writes a manifest generation that changes both
stages' config (each worker builds both stages from the compile cache and rebinds).

{swap_load.report(s)}

![swap under load](plots/swap_load.png)
"""


def _memory(r: dict) -> str:
    from bench import memory_swaps

    m = r["memory_swaps"]
    stalled = ""
    if m.get("stalled"):
        st = m["stalled"]
        stalled = (f"\n**The run stopped after {st['swap'] - 1} of {m['swaps_planned']} swaps**: generation "
                   f"{st['generation']} did not reach worker(s) {', '.join(st['workers_behind'])} within "
                   f"{memory_swaps.STALL_S:g} s (last generation each served: {st['last_generation_served']}).\n")
    control = ""
    if m.get("control"):
        control = f"\nControl without gunicorn: {memory_swaps.control_text(m['control'])}.\n"
    return f"""## 4. Memory over {m['swaps_planned']} swaps

`mwhost serve` ({m['workers']} sync workers, the same two stages); each swap writes a generation
changing both stages' config, waits until every worker logged that it serves it, then sends
{memory_swaps.REQUESTS_PER_SWAP} requests. VmRSS and open fds of each worker read from /proc every few swaps,
growth counted from the first swap every worker applied (before it a worker may still be building its
first pipeline); {m['swaps']} swaps in {m['seconds']:.0f} s; same worker processes at the end: {m['same_workers']}.
{stalled}
{memory_swaps.report(m)}
{control}
![memory over swaps](plots/memory_swaps.png)
"""


def _cold_start(r: dict) -> str:
    c = r["cold_start"]
    rows = "\n".join(
        f"| {label} | {v['wasm_bytes'] / 1024:.0f} | {v['compile_ms']:.1f} | {v['load_cached_ms']:.2f} | "
        f"{c['activation_ms'].get(label, float('nan')):.2f} | {v['instance_ms']:.2f} | {v['rss_per_instance_kib']:.0f} | "
        f"{v['compile_ms'] / c['activation_ms'][label]:.0f}x |" for label, v in c["instantiate"].items())
    return f"""## 5. Cold start

Medians of {c['counts'][0]} compiles, {c['counts'][1]} loads of the compiled `.cwasm` and
{c['counts'][2]} new instances (with `_initialize` for Go and `mw_init`), and {c['activations']}
activations from the compile cache (building a one-stage pipeline whose module was compiled
before: what a worker does on a swap).

| guest | size KiB | compile ms | load .cwasm ms | activation ms | new instance ms | RSS per instance KiB | compile / activation |
|---|---|---|---|---|---|---|---|
{rows}

![cold start](plots/cold_start.png)
"""


def render(r: dict, plots: list[str]) -> str:
    found = targets(r)
    rows = "\n".join(f"| {t['target']} | {t['measured']} | {_verdict(t['met'])} |" for t in found)
    causes = "\n".join(f"- **{t['target']}** ({t['measured']}): {t['cause']}." for t in found
                       if not t["met"] and t["cause"])
    sections = []
    for name, render_section in (("stage_cost", _stage_cost), ("throughput", _throughput),
                                 ("swap_load", _swap_load), ("memory_swaps", _memory), ("cold_start", _cold_start)):
        if name in r:
            sections.append(render_section(r))
        elif name in r["errors"]:
            sections.append(f"## {name}\n\nThis section failed:\n\n```\n{r['errors'][name]}\n```\n")
    smoke = "\n**Smoke run: tiny counts, the numbers mean nothing.**\n" if r["smoke"] else ""
    reruns = "".join(
        f"\nSections {', '.join(run['sections'])} were measured again on commit "
        f"{run['machine'].get('commit', '?')} ({run['machine'].get('date', '')}): `{run['command']}`.\n"
        for run in r.get("reruns", []))
    return f"""# mwhost benchmark report
{smoke}
Command: `{r['command']}` (from the repository root, after `./scripts/setup.sh`)

{_machine(r)}
{reruns}
Ratios are measured within this one run; on a shared 2-core machine absolute figures move
from run to run, ratios much less. Raw numbers: [results/suite.json](results/suite.json).

## Targets

| target | measured | verdict |
|---|---|---|
{rows}

{("### Where a target is missed: the measured cause" + chr(10) + chr(10) + causes) if causes else "Every target is met."}

{chr(10).join(sections)}"""
