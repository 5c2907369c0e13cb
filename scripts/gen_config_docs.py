"""Write docs/configuration.md from the one declaration of every setting (host/settings.py)."""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mwhost.settings import ADMIN_KEYS, FLEET_KEYS, REQUIRED, ROLLOUT_KEYS, SERVER_KEYS, STAGE_KEYS  # noqa: E402

TARGET = ROOT / "docs" / "configuration.md"


def _table(keys) -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, key in keys.items():
        default = "required" if key.default is REQUIRED else f"`{key.default!r}`"
        rows.append(f"| `{name}` | {key.type.__name__} | {default} | {key.doc} |")
    return "\n".join(rows)


def render() -> str:
    return f"""# Configuration (`mwhost.toml`)

Generated from `host/settings.py` by `scripts/gen_config_docs.py`; do not edit by hand.

A config file has optional `[server]`, `[admin]` and `[rollout]` tables and one `[[middleware]]` table
per stage, in pipeline order. Relative paths are relative to the config file. Unknown keys are refused, and
every error names the file, the table and the key.

```toml
[server]
bind = "127.0.0.1:8000"
workers = 2
data_dir = "mwhost-data"

[[middleware]]
name = "auth"
module = "guests/bearer_auth.wasm"
on_error = "fail_closed"
timeout_ms = 100
max_memory_mb = 64
[middleware.config]
secret = "change me"
```

## `[server]`

Command-line flags of `mwhost serve` (`--bind`, `--workers`, `--data-dir`) override these.

{_table(SERVER_KEYS)}

## `[admin]`

{_table(ADMIN_KEYS)}

## `[rollout]`

Canary and shadow rollouts (docs/rollouts.md).

{_table(ROLLOUT_KEYS)}

## `[fleet]`

A fleet of hosts on one pipeline through Redis (docs/fleet.md). `mwhost serve --fleet-url`
and `$MWHOST_FLEET_URL` override `url`.

{_table(FLEET_KEYS)}

## `[[middleware]]`

{_table(STAGE_KEYS)}

### Why these defaults

- `timeout_ms = 100`: covers a JWT check or a table lookup with a wide margin, while a stuck
  guest cannot hold a worker for long. The deadline is enforced with wasmtime's epoch
  interruption (a 10 ms tick), so a call is stopped between `timeout_ms` and
  `timeout_ms + 20` ms.
  It is wall time: the ticker is a C thread that keeps time while a worker waits for a
  core, so on a machine so overloaded that a worker gets no CPU for `timeout_ms`, even a
  short call can be stopped (a `timeout` failure); raise `timeout_ms` there.
- `max_memory_mb = 64`: far above what the examples use (Rust ~1 MiB, Go ~2 MiB per instance)
  and far below what would hurt the host; without a limit one guest could take 4 GiB.
- `on_error = "fail_closed"`: a security stage that fails must not let requests through
  unchecked; choose `fail_open` for stages whose effect is optional (headers, metrics).
"""


def main() -> None:
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render())
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
