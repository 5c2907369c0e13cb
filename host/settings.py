"""Settings, declared once: every key with its type, default, check and doc text.

``mwhost.toml``::

    [server]                      # optional; CLI flags win
    bind = "127.0.0.1:8000"
    workers = 2
    data_dir = "mwhost-data"

    [rollout]                     # optional; docs/rollouts.md
    allow_force_header = true

    [[middleware]]                # one table per stage, in pipeline order
    name = "auth"
    module = "guests/bearer_auth.wasm"   # relative to the config file
    on_error = "fail_closed"
    timeout_ms = 100
    max_memory_mb = 64
    [middleware.config]           # handed to the module's mw_init
    secret = "..."

The docs (``docs/configuration.md``) and ``mwhost serve --help`` are generated from
``STAGE_KEYS``, ``SERVER_KEYS``, ``ADMIN_KEYS`` and ``ROLLOUT_KEYS``.
"""

from __future__ import annotations

import json
import pathlib
import re
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import msgpack

from .errors import ConfigError

ON_ERROR_POLICIES = ("fail_closed", "fail_open")
#: gunicorn's worker timeout under ``mwhost serve``: a worker silent for this long is killed
WORKER_TIMEOUT_S = 30
#: the largest ``timeout_ms``: one call must end well within the worker timeout, or gunicorn
#: kills the worker (every request it holds is lost, and nothing names the stage)
MAX_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Key:
    """One setting: its type, default (``REQUIRED`` if none), check and doc text."""

    type: type | tuple[type, ...]
    default: Any
    doc: str
    check: Callable[[Any], str | None] = lambda value: None  # returns a complaint or None


REQUIRED = object()


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _between(low: int, high: int, why: str = "") -> Callable[[Any], str | None]:
    """A range check; ``why`` says where the upper bound comes from."""
    too_low = "must be greater than 0" if low == 1 else f"must be {low} or more"

    def check(value: Any) -> str | None:
        if value < low:
            return too_low
        return f"must be at most {high}{why}" if value > high else None
    return check


#: the documented range of every numeric stage setting (the admin API's OpenAPI document too)
STAGE_RANGES: dict[str, tuple[int, int]] = {
    "timeout_ms": (1, MAX_TIMEOUT_MS), "max_memory_mb": (1, 4096), "fuel": (0, 10 ** 12),
    "max_output_kb": (1, 65536), "max_log_kb": (1, 65536),
}


#: a stage name: ASCII only (no homoglyphs), never "." or "..", safe in a path, a file name,
#: a log line and a metric label
NAME_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_-])?", re.ASCII)
NAME_RULE = ("letters, digits, '_', '-' or '.' (ASCII, 1 to 64 characters), starting with a letter "
             "or digit and not ending with '.'")


def _name(value: str) -> str | None:
    if NAME_PATTERN.fullmatch(value):
        return None
    return f"must be {NAME_RULE}" + (f" (it has {len(value)} characters)" if len(value) > 64 else "")


#: the shape every stage config must have, whichever way it arrives (file, drop folder, admin)
CONFIG_MAX_DEPTH = 32
CONFIG_MAX_BYTES = 256 * 1024
_MSGPACK_INT = (-(2 ** 63), 2 ** 64 - 1)


def check_config(value: Any, where: str = "config") -> str | None:
    """A complaint naming ``where`` when ``value`` cannot be a stage config: not a map with
    string keys, nested deeper than ``CONFIG_MAX_DEPTH``, a value msgpack cannot carry, or
    over ``CONFIG_MAX_BYTES`` as msgpack. None when it is fine."""
    if not isinstance(value, Mapping):
        return f"{where} must be a table (a JSON object), got {type(value).__name__}"
    # NOTE: iterative, so a hostile nesting depth cannot exhaust the Python stack
    pending: list[tuple[Any, str, int]] = [(value, where, 1)]
    while pending:
        item, path, depth = pending.pop()
        if depth > CONFIG_MAX_DEPTH:
            return f"{where} is nested deeper than {CONFIG_MAX_DEPTH} levels (at {path[:200]})"
        if isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"{path[:200]} has a key that is not a string ({type(key).__name__})"
                pending.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(item, (list, tuple)):
            pending.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            if not _MSGPACK_INT[0] <= item <= _MSGPACK_INT[1]:
                return f"{path[:200]} is an integer msgpack cannot carry (outside -2^63 .. 2^64-1)"
        elif not isinstance(item, (str, bytes, float, bool, type(None))):
            return f"{path[:200]} is a {type(item).__name__}, which msgpack cannot carry"
    size = len(msgpack.packb(value, use_bin_type=True))
    if size > CONFIG_MAX_BYTES:
        return f"{where} is {size} bytes as msgpack; the limit is {CONFIG_MAX_BYTES}"
    return None


STAGE_KEYS: dict[str, Key] = {
    "name": Key(str, REQUIRED, "Stage name, unique in the pipeline; used in logs, metrics and the admin API: "
                f"{NAME_RULE}.", _name),
    "module": Key(str, REQUIRED, "Path to the .wasm module, relative to the config file."),
    "config": Key(dict, {}, "Table handed to the module's mw_init as a msgpack map: string keys, nested at most "
                f"{CONFIG_MAX_DEPTH} levels, at most {CONFIG_MAX_BYTES // 1024} KiB as msgpack.",
                lambda value: check_config(value, "the table")),
    "on_error": Key(str, "fail_closed", "What a failure of this stage does to the request: fail_closed answers "
                    "503 problem+json, fail_open skips the stage.", _one_of(ON_ERROR_POLICIES)),
    "timeout_ms": Key(int, 100, "Wall-time limit per guest call, in milliseconds, host calls (WASI sleeps) "
                      f"included (1 to {MAX_TIMEOUT_MS}: a call must end well within gunicorn's "
                      f"{WORKER_TIMEOUT_S} s worker timeout).",
                      _between(*STAGE_RANGES["timeout_ms"], f" (a call must end well within the {WORKER_TIMEOUT_S} s "
                               "worker timeout)")),
    "max_memory_mb": Key(int, 64, "Linear-memory limit per instance, in MiB (1 to 4096, "
                         "wasm32's whole address space).", _between(*STAGE_RANGES["max_memory_mb"])),
    "fuel": Key(int, 0, "Fuel per guest call (about one unit per wasm instruction); 0 turns "
                "metering off; at most 10^12. A deterministic CPU limit on top of the wall-time one.",
                _between(*STAGE_RANGES["fuel"])),
    "max_output_kb": Key(int, 1024, "Largest message a guest may return per call, in KiB (1 to 65536); more is a "
                         "guest error.", _between(*STAGE_RANGES["max_output_kb"])),
    "max_log_kb": Key(int, 16, "Guest log (mw.log, stdout, stderr) kept per call, in KiB (1 to 65536); the rest "
                      "is dropped and counted.", _between(*STAGE_RANGES["max_log_kb"])),
}

SERVER_KEYS: dict[str, Key] = {
    "bind": Key(str, "127.0.0.1:8000", "Address gunicorn listens on (HOST:PORT)."),
    "workers": Key(int, 2, "Number of gunicorn worker processes.", _positive),
    "data_dir": Key(str, "mwhost-data", "Folder for the module store, compile cache and manifest, relative to the config file."),
    "drop_dir": Key(str, "", "Drop folder: NAME.wasm (+ NAME.toml) there becomes stage NAME. Default <data_dir>/drop."),
    "worker_class": Key(str, "gthread", "gunicorn worker class: gthread (threads per process; request heads "
                        "are read without holding a thread, so idle and slow clients cannot stall the server: "
                        "docs/operations.md) or sync (one connection at a time per process: any idle client "
                        "stalls a worker for up to 30 s; only behind a buffering proxy).",
                        _one_of(("sync", "gthread"))),
    "threads": Key(int, 4, "Threads per worker with worker_class = gthread (1 to 64).", _between(1, 64)),
    "log_format": Key(str, "text", "Log lines as text or as one JSON object per line (docs/observability.md).",
                      _one_of(("text", "json"))),
}

ADMIN_KEYS: dict[str, Key] = {
    "jwt_secret": Key(str, "", "HS256 secret for admin tokens (or $MWHOST_ADMIN_JWT_SECRET). With neither this "
                      "nor jwt_public_key, `mwhost serve` generates one at start and prints a token."),
    "jwt_public_key": Key(str, "", "Path to an Ed25519 public key (PEM) for EdDSA admin tokens, relative to the config file."),
    "trusted_keys": Key(list, [], "Paths to Ed25519 publisher public keys (PEM). Once any is set, uploads must carry "
                        "a valid signature over the module's sha256."),
    "max_module_mb": Key(int, 32, "Largest module an upload may carry, in MiB (413 above).", _positive),
    "keep_versions": Key(int, 5, "Earlier versions kept per stage for rollback.", _positive),
}

ROLLOUT_KEYS: dict[str, Key] = {
    "allow_force_header": Key(bool, True, "Whether the request header x-mwhost-variant: candidate|baseline routes "
                              "that request to that variant of every stage under a canary rollout (the manual "
                              "first check, docs/rollouts.md). Turn it off where clients must not choose."),
    "record_values": Key(bool, False, "Whether a shadow rollout's recorded differences include header values "
                         "(they may carry tokens or personal data); off, only which fields differ is kept."),
}

#: the ``[fleet]`` table (docs/fleet.md): without ``url`` the host is on its own
FLEET_KEYS: dict[str, Key] = {
    "url": Key(str, "", "Redis URL of the fleet store (redis://[:PASSWORD@]HOST:PORT/DB or rediss://...), or "
               "$MWHOST_FLEET_URL / `mwhost serve --fleet-url`. Empty: no fleet, the data dir alone.",
               lambda value: check_fleet_url(value) if value else None),
    "name": Key(str, "default", "The fleet's name: namespaces its keys, so several fleets share one Redis.", _name),
}
FLEET_SCHEMES = ("redis", "rediss")
#: the environment variable that joins ``mwhost serve`` to a fleet (``--fleet-url`` wins)
FLEET_URL_ENV = "MWHOST_FLEET_URL"
FLEET_NAME_ENV = "MWHOST_FLEET_NAME"


def check_fleet_url(url: str) -> str | None:
    """A complaint when ``url`` cannot be a fleet store's Redis URL (None when it can).
    NOTE: parsed here without redis-py, which is imported only when a fleet is configured
    (``mwhost serve`` then asks redis-py too: host/fleet/urls.py)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in FLEET_SCHEMES:
        return "must start with redis:// or rediss:// (e.g. redis://127.0.0.1:6379/0)"
    try:
        port = parsed.port
    except ValueError:
        return "has a port that is not a number from 1 to 65535"
    if not parsed.hostname:
        return "names no host (e.g. redis://127.0.0.1:6379/0)"
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    db = parsed.path.lstrip("/")
    if db and not db.isdigit():
        return f"names database {db!r}; it must be a number (redis://HOST:PORT/0)"
    return None


@dataclass(frozen=True)
class FleetSettings:
    """The ``[fleet]`` table: the Redis that holds the fleet's desired pipeline (docs/fleet.md)."""

    url: str = FLEET_KEYS["url"].default
    name: str = FLEET_KEYS["name"].default

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def redacted_url(self) -> str:
        """The URL without its password, for logs and error messages."""
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.password is None:
            return self.url
        netloc = f"{parsed.username or ''}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
        return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


@dataclass(frozen=True)
class AdminSettings:
    """The ``[admin]`` table: admin API auth, module signatures, upload limits."""

    jwt_secret: str = ""
    jwt_public_key: pathlib.Path | None = None
    trusted_keys: tuple[pathlib.Path, ...] = ()
    max_module_mb: int = ADMIN_KEYS["max_module_mb"].default
    keep_versions: int = ADMIN_KEYS["keep_versions"].default


@dataclass(frozen=True)
class RolloutSettings:
    """The ``[rollout]`` table: what canary and shadow rollouts may do on this host."""

    allow_force_header: bool = ROLLOUT_KEYS["allow_force_header"].default
    record_values: bool = ROLLOUT_KEYS["record_values"].default


@dataclass(frozen=True)
class StageSettings:
    """One stage, as described everywhere: the config file, the drop folder, an upload, the
    manifest (``StageEntry`` adds the module version) and admission. Its fields are the keys
    of ``STAGE_KEYS`` (a test keeps them equal); ``module`` is the file a config or drop
    folder names, None when the module comes from the store."""

    name: str
    module: pathlib.Path | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    on_error: str = STAGE_KEYS["on_error"].default
    timeout_ms: int = STAGE_KEYS["timeout_ms"].default
    max_memory_mb: int = STAGE_KEYS["max_memory_mb"].default
    fuel: int = STAGE_KEYS["fuel"].default
    max_output_kb: int = STAGE_KEYS["max_output_kb"].default
    max_log_kb: int = STAGE_KEYS["max_log_kb"].default

    @property
    def fail_open(self) -> bool:
        return self.on_error == "fail_open"

    def policy(self) -> tuple:
        """Every setting but the name and the module: what makes two stages behave alike."""
        return tuple(_canonical(self.config) if key == "config" else getattr(self, key)
                     for key in POLICY_KEYS)

    def described(self) -> dict[str, Any]:
        """The settings besides name and module, as a plain dict (for ``dataclasses.replace``)."""
        return {key: getattr(self, key) for key in POLICY_KEYS}


#: the stage keys besides name and module, in table order
POLICY_KEYS = tuple(key for key in STAGE_KEYS if key not in ("name", "module"))


def _canonical(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


@dataclass(frozen=True)
class Settings:
    """The whole host configuration: server options and the pipeline at start."""

    middleware: tuple[StageSettings, ...] = ()
    bind: str = SERVER_KEYS["bind"].default
    workers: int = SERVER_KEYS["workers"].default
    data_dir: pathlib.Path = pathlib.Path(SERVER_KEYS["data_dir"].default)
    drop_dir: pathlib.Path | None = None
    worker_class: str = SERVER_KEYS["worker_class"].default
    threads: int = SERVER_KEYS["threads"].default
    log_format: str = SERVER_KEYS["log_format"].default
    admin: AdminSettings = field(default_factory=AdminSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    source: str = "<settings>"

    @property
    def drop_folder(self) -> pathlib.Path:
        return self.drop_dir or self.data_dir / "drop"


def check_table(table: Mapping[str, Any], keys: dict[str, Key], where: str) -> dict[str, Any]:
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(keys)})")
    values = {}
    for name, key in keys.items():
        if name not in table:
            if key.default is REQUIRED:
                raise ConfigError(f"{where}: missing required key {name!r}")
            continue
        value = table[name]
        if not isinstance(value, key.type) or (key.type is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: key {name!r} must be {key.type.__name__}, got {type(value).__name__}")
        complaint = key.check(value)
        if complaint:
            raise ConfigError(f"{where}: key {name!r} {complaint}, got {value!r:.80}")
        values[name] = value
    return values


def settings_from_dict(data: Mapping[str, Any], source: str = "<settings>",
                       base: pathlib.Path | None = None) -> Settings:
    """Validate a parsed config (as ``tomllib`` returns it); relative paths resolve against ``base``."""
    base = base or pathlib.Path.cwd()
    check_table({k: v for k, v in data.items() if k not in ("server", "middleware", "admin", "rollout", "fleet")}, {}, source)
    server = data.get("server", {})
    if not isinstance(server, Mapping):
        raise ConfigError(f"{source}: [server] must be a table")
    server_values = check_table(server, SERVER_KEYS, f"{source}: [server]")
    tables = data.get("middleware", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{source}: 'middleware' must be an array of tables ([[middleware]])")
    stages = tuple(_stage(table, f"{source}: [[middleware]] #{i + 1}", base)
                   for i, table in enumerate(tables))
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            raise ConfigError(f"{source}: two [[middleware]] tables are named {stage.name!r}")
        seen.add(stage.name)
    for key in ("data_dir", "drop_dir"):
        if server_values.get(key):
            server_values[key] = base / server_values[key]
        else:
            server_values.pop(key, None)
    return Settings(middleware=stages, source=source, admin=_admin(data.get("admin", {}), source, base),
                    rollout=_rollout(data.get("rollout", {}), source), fleet=_fleet(data.get("fleet", {}), source),
                    **server_values)


def _admin(table: Any, source: str, base: pathlib.Path) -> AdminSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [admin] must be a table")
    values = check_table(table, ADMIN_KEYS, f"{source}: [admin]")
    if values.get("jwt_public_key"):
        values["jwt_public_key"] = base / values["jwt_public_key"]
    else:
        values.pop("jwt_public_key", None)
    keys = values.pop("trusted_keys", [])
    if not all(isinstance(key, str) for key in keys):
        raise ConfigError(f"{source}: [admin]: key 'trusted_keys' must be a list of paths")
    return AdminSettings(trusted_keys=tuple(base / key for key in keys), **values)


def _rollout(table: Any, source: str) -> RolloutSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [rollout] must be a table")
    return RolloutSettings(**check_table(table, ROLLOUT_KEYS, f"{source}: [rollout]"))


def _fleet(table: Any, source: str) -> FleetSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [fleet] must be a table")
    return FleetSettings(**check_table(table, FLEET_KEYS, f"{source}: [fleet]"))


def _stage(table: Any, where: str, base: pathlib.Path) -> StageSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: must be a table")
    if isinstance(table.get("name"), str):
        where = f"{where} ({table['name']!r})"
    values = check_table(table, STAGE_KEYS, where)
    values["module"] = base / values["module"]
    return StageSettings(**values)


def load_settings(path: str | pathlib.Path) -> Settings:
    """Read and validate an ``mwhost.toml``; every complaint names the file, table and key."""
    path = pathlib.Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return settings_from_dict(data, source=str(path), base=path.resolve().parent)
