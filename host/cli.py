"""The ``mwhost`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import pathlib
import sys

from . import __version__
from .errors import HostError
from .logs import configure_logging
from .settings import FLEET_KEYS, FLEET_URL_ENV, SERVER_KEYS, STAGE_KEYS

#: stage settings ``mwhost upload`` takes as flags (everything but name, module and config)
SETTING_KEYS = tuple(key for key in STAGE_KEYS if key not in ("name", "module", "config"))

logger = logging.getLogger("mwhost")


def _add_serve(commands) -> None:
    serve = commands.add_parser("serve", help="run the host under gunicorn",
                                description="Run the host under gunicorn. With no --config it serves "
                                            "the example pipeline from the data folder (the embedded default).")
    serve.add_argument("--config", metavar="FILE", help="an mwhost.toml (default: the embedded demo pipeline)")
    serve.add_argument("--bind", metavar="HOST:PORT", help=f"{SERVER_KEYS['bind'].doc} Default {SERVER_KEYS['bind'].default}.")
    serve.add_argument("--workers", type=int, metavar="N", help=f"{SERVER_KEYS['workers'].doc} Default {SERVER_KEYS['workers'].default}.")
    serve.add_argument("--data-dir", metavar="DIR", help=f"{SERVER_KEYS['data_dir'].doc} Default ./{SERVER_KEYS['data_dir'].default}.")
    serve.add_argument("--drop-dir", metavar="DIR", help=SERVER_KEYS["drop_dir"].doc)
    serve.add_argument("--worker-class", choices=("sync", "gthread"), help=SERVER_KEYS["worker_class"].doc)
    serve.add_argument("--threads", type=int, metavar="N", help=SERVER_KEYS["threads"].doc)
    serve.add_argument("--log-format", choices=("text", "json"), help=SERVER_KEYS["log_format"].doc)
    serve.add_argument("--fleet-url", metavar="URL", help=f"Join a fleet: {FLEET_KEYS['url'].doc} "
                       f"Over ${FLEET_URL_ENV} and the config's [fleet] url.")
    serve.set_defaults(run=_serve)


def _add_validate(commands) -> None:
    validate = commands.add_parser("validate", help="check a module offline against ABI v1",
                                   description="Compile a module, check its exports and imports, instantiate "
                                               "it and (with --config) run mw_init, without serving it.")
    validate.add_argument("module", metavar="FILE", help="a .wasm file")
    validate.add_argument("--config", metavar="JSON", default="{}", help="the stage config as JSON (default {})")
    validate.set_defaults(run=_validate)


def _serve(args: argparse.Namespace) -> int:
    from .admin import announce, prepare_admin
    from .server import HostApplication, gunicorn_options, probe_bind

    settings = _serve_settings(args)
    probe_bind(settings.bind)  # NOTE: before the token is printed: a bad bind is one line, nothing else
    configure_logging(settings.log_format)
    startup = prepare_admin(settings)  # checks the admin keys; makes a secret when none is set
    settings = startup.settings
    application = HostApplication(settings, gunicorn_options(settings))
    count = application.precompile()
    logger.info("pipeline of %d stage(s) checked; data in %s", count, settings.data_dir)
    print(announce(startup, settings.bind), file=sys.stderr, flush=True)
    application.run()
    return 0


def _serve_settings(args: argparse.Namespace):
    """The settings ``serve`` runs with: the config file (or the demo) with the flags over it,
    every server setting checked, folders absolute (log lines name them one way)."""
    from .registry import demo_settings
    from .settings import load_settings

    if args.config:
        settings = load_settings(args.config)
    else:
        settings = demo_settings(pathlib.Path(args.data_dir or SERVER_KEYS["data_dir"].default).resolve())
    overrides = {"bind": args.bind, "workers": args.workers, "worker_class": args.worker_class,
                 "threads": args.threads, "log_format": args.log_format,
                 "data_dir": pathlib.Path(args.data_dir) if args.data_dir else None,
                 "drop_dir": pathlib.Path(args.drop_dir) if args.drop_dir else None}
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in ("workers", "threads"):
        complaint = SERVER_KEYS[key].check(given[key]) if key in given else None
        if complaint:
            raise UsageError(f"--{key} {complaint}, got {given[key]}")
    settings = dataclasses.replace(settings, **given, fleet=_fleet_settings(args, settings.fleet))
    drop_dir = settings.drop_dir.resolve() if settings.drop_dir else settings.drop_dir
    return dataclasses.replace(settings, data_dir=settings.data_dir.resolve(), drop_dir=drop_dir)


def _fleet_settings(args: argparse.Namespace, fleet):
    """``--fleet-url``, else ``$MWHOST_FLEET_URL``, else the config's ``[fleet] url``; checked
    here, so a bad URL is one line before anything starts (docs/fleet.md)."""
    from .settings import check_fleet_url

    flag = getattr(args, "fleet_url", None)
    url, where = (flag, "--fleet-url") if flag else (os.environ.get(FLEET_URL_ENV), f"${FLEET_URL_ENV}")
    if not url:
        url, where = fleet.url, "[fleet] url"
    if not url:
        return fleet
    complaint = check_fleet_url(url)
    if not complaint:
        from .fleet.urls import redis_refusal  # NOTE: only a host joining a fleet loads redis-py

        complaint = redis_refusal(url)
    if complaint:
        raise UsageError(f"{where} {complaint}")
    return dataclasses.replace(fleet, url=url)


def _validate(args: argparse.Namespace) -> int:
    from .pipeline import admit
    from .registry import read_module_file
    from .runtime import Runtime
    from .settings import StageSettings

    config = _config_object(args.config)
    path = pathlib.Path(args.module)
    settings = StageSettings(name=path.stem.replace(" ", "_") or "module", module=path, config=config)
    admitted = admit(settings, read_module_file(path), Runtime())
    phases = "request and response" if admitted.has_on_response else "request"
    print(f"{path}: ok (abi: {admitted.abi}, sha256 {admitted.sha256}, {phases} phase, "
          f"{admitted.probes} probe requests)")
    return 0


# ---- admin API client commands (host/client.py) ----------------------------------------------

def _client_parser(commands, name: str, help: str, run) -> argparse.ArgumentParser:
    from .client import DEFAULT_URL, TOKEN_ENV, URL_ENV

    parser = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    parser.add_argument("--url", help=f"the host's base URL (default ${URL_ENV}, else {DEFAULT_URL})")
    parser.add_argument("--token", help=f"admin bearer token (default ${TOKEN_ENV})")
    parser.set_defaults(run=run)
    return parser


def _add_client_commands(commands) -> None:
    upload = _client_parser(commands, "upload", "check a module on the server and make it a stage's active version",
                            _upload)
    upload.add_argument("module", metavar="MODULE", help="a .wasm file")
    upload.add_argument("--name", help="stage name (default: the file name without .wasm)")
    upload.add_argument("--position", type=int, metavar="N",
                        help="0-based place in the pipeline (default: a new stage goes last, after every "
                             "stage; a new version keeps its stage's place; --position 0 runs it first, "
                             "where an auth stage belongs)")
    _add_module_flags(upload)
    upload.epilog = ("Settings and --config left out keep the stage's current values when the upload "
                     "replaces a stage; a new stage gets the defaults shown.")
    listing = _client_parser(commands, "list", "show the pipeline, or one stage's kept versions", _list)
    listing.add_argument("name", nargs="?", metavar="NAME", help="a stage: list its versions")
    rollback = _client_parser(commands, "rollback", "make a stage's previous (or a given) version active again",
                              _rollback)
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument("--to", metavar="SHA256", help="the kept version to activate (a unique prefix will do)")
    remove = _client_parser(commands, "remove", "remove a stage from the pipeline", _remove)
    remove.add_argument("name", metavar="NAME")
    reorder = _client_parser(commands, "reorder", "put the stages in a new order", _reorder)
    reorder.add_argument("names", nargs="+", metavar="NAME", help="every stage, once, in the new order")


def _add_module_flags(parser: argparse.ArgumentParser) -> None:
    """What an upload and a rollout's candidate share: signature, config, stage settings, samples."""
    parser.add_argument("--signature", metavar="FILE", help="detached signature (default MODULE.sig when it exists)")
    parser.add_argument("--config", metavar="JSON", help="the stage config as a JSON object, or @FILE")
    for key in SETTING_KEYS:
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, metavar=key.upper().split("_")[-1]
                            if key != "on_error" else "POLICY",
                            help=f"{STAGE_KEYS[key].doc} Default for a new stage: {STAGE_KEYS[key].default}.")
    parser.add_argument("--sample", metavar="FILE", action="append", default=[],
                        help="JSON file with one sample request (or a list) to probe the module with; repeatable")


def _module(args: argparse.Namespace) -> tuple[bytes, str | None, dict]:
    """(the module's bytes, its signature or None, the upload parameters) from the shared flags."""
    from .registry import read_module_file

    path = pathlib.Path(args.module)
    wasm = read_module_file(path)
    signature_path = pathlib.Path(args.signature) if args.signature else path.with_name(path.name + ".sig")
    signature = None
    if args.signature or signature_path.exists():
        signature = _read_text(signature_path, "signature").strip()
    params = {"config": _json_arg(args.config, "--config") if args.config else None,
              **{key: getattr(args, key) for key in SETTING_KEYS}}
    if args.sample:
        samples = []
        for sample in args.sample:
            loaded = json.loads(_json_arg("@" + sample, "--sample"))
            samples += loaded if isinstance(loaded, list) else [loaded]
        params["samples"] = json.dumps(samples)
    return wasm, signature, params


def _client(args: argparse.Namespace):
    from .client import AdminClient

    return AdminClient(args.url, args.token)


def _upload(args: argparse.Namespace) -> int:
    from .client import format_upload

    client = _client(args)
    wasm, signature, params = _module(args)
    params["position"] = args.position
    name = args.name or pathlib.Path(args.module).name.removesuffix(".wasm")
    print(format_upload(client.upload(name, wasm, signature=signature, params=params)))
    return 0


def _list(args: argparse.Namespace) -> int:
    from .client import format_pipeline, format_versions

    client = _client(args)
    print(format_versions(client.versions(args.name)) if args.name
          else format_pipeline(client.pipeline(), client.fleet()))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from .client import format_rollback

    print(format_rollback(_client(args).rollback(args.name, args.to)))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from .client import format_remove

    print(format_remove(_client(args).remove(args.name)))
    return 0


def _reorder(args: argparse.Namespace) -> int:
    result = _client(args).reorder(args.names)
    print(f"order: {', '.join(result['order'])} (generation {result['generation']})")
    return 0


# ---- rollouts (docs/rollouts.md) ------------------------------------------------------------

#: ``mwhost rollout start`` flags that are rollout parameters: (parameter, type, metavar, help)
ROLLOUT_FLAGS = (
    ("steps", str, "P,P,...,100", "canary: candidate percentages, increasing, ending at 100 (default 1,5,25,50,100)"),
    ("step_s", float, "SECONDS", "the least time a step lasts before it may advance (default 60)"),
    ("key", str, "FORM", "what requests are bucketed by: header:NAME, cookie:NAME, jwt:sub or remote_addr "
                         "(the default)"),
    ("percent", int, "N", "with --shadow: the share of requests the candidate sees a copy of (default 100)"),
    ("min_requests", int, "N", "candidate requests a step needs before any verdict (default 100)"),
    ("max_failure_rate", float, "RATE", "candidate stage failures per call (default 0.01)"),
    ("max_error_rate_delta", float, "RATE", "candidate 5xx rate minus the baseline's (default 0.01)"),
    ("max_latency_ratio", float, "RATIO", "candidate p99 stage-call time over the baseline's (default 2.0)"),
)
ROLLOUT_CONTROLS = {"promote": "make the candidate of a stage's rollout its active version now",
                    "abort": "take the candidate of a stage's rollout out of the traffic (it stays a kept version)",
                    "pause": "hold a stage's rollout at its current share (no verdicts until resumed)",
                    "resume": "judge a paused rollout again (its current step starts over)"}


def _add_rollout_commands(commands) -> None:
    rollout = commands.add_parser("rollout", help="canary and shadow rollouts: start, status, promote, abort, "
                                                  "pause, resume",
                                  description="Roll a new version of a stage out beside its active one "
                                              "(docs/rollouts.md).")
    actions = rollout.add_subparsers(dest="rollout_command", required=True, metavar="ACTION")
    start = _client_parser(actions, "start", "check a module on the server and roll it out beside a stage's "
                                             "active version", _rollout_start)
    start.add_argument("name", metavar="NAME", help="the stage (it must exist)")
    start.add_argument("module", metavar="MODULE", help="a .wasm file: the candidate")
    start.add_argument("--shadow", action="store_true",
                       help="a shadow: the candidate sees copies of requests, compared and never applied")
    for parameter, kind, metavar, help in ROLLOUT_FLAGS:
        start.add_argument(f"--{parameter.replace('_', '-')}", dest=parameter, type=kind, metavar=metavar, help=help)
    _add_module_flags(start)
    status = _client_parser(actions, "status", "show a stage's rollout: state, share, analysis", _rollout_status)
    status.add_argument("name", metavar="NAME")
    for action, help in ROLLOUT_CONTROLS.items():
        control = _client_parser(actions, action, help, _rollout_control)
        control.add_argument("name", metavar="NAME")
        control.add_argument("--reason", help="a note for the audit log and the rollout's reason")
        control.set_defaults(action=action)


def _rollout_start(args: argparse.Namespace) -> int:
    from .client import format_rollout_started

    if args.shadow and args.steps is not None:
        raise UsageError("--steps is for a canary; a shadow sees a fixed share (--percent)")
    if not args.shadow and args.percent is not None:
        raise UsageError("--percent is for --shadow; a canary's share comes from --steps")
    client = _client(args)
    wasm, signature, params = _module(args)
    params.update({parameter: getattr(args, parameter) for parameter, *_ in ROLLOUT_FLAGS})
    kind = "shadow" if args.shadow else "canary"
    print(format_rollout_started(client.start_rollout(args.name, wasm, kind, signature=signature, params=params)))
    return 0


def _rollout_status(args: argparse.Namespace) -> int:
    from .client import format_rollout

    print(format_rollout(_client(args).rollout(args.name)))
    return 0


def _rollout_control(args: argparse.Namespace) -> int:
    from .client import format_rollout_control

    print(format_rollout_control(_client(args).control_rollout(args.name, args.action, args.reason)))
    return 0


def _config_object(value: str) -> dict:
    """``--config``: a JSON object given inline or as @FILE, checked as every stage config is."""
    from .settings import check_config

    config = json.loads(_json_arg(value, "--config"))
    complaint = check_config(config, "--config")
    if complaint:
        raise UsageError(complaint)
    return config


def _read_text(path: pathlib.Path, what: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise HostError(f"cannot read the {what} {path}: {getattr(err, 'strerror', None) or err}") from err


def _json_arg(value: str, flag: str) -> str:
    """A JSON argument given inline or as @FILE, checked to parse (the server checks the rest)."""
    text = _read_text(pathlib.Path(value[1:]), flag) if value.startswith("@") else value
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise HostError(f"{flag} is not valid JSON: {err}") from err
    return text


# ---- keys, signatures and tokens -----------------------------------------------------------

def _add_key_commands(commands) -> None:
    keygen = commands.add_parser("keygen", help="make an Ed25519 key pair for signing modules (or admin tokens)",
                                 description="Write NAME.key (private, mode 0600) and NAME.pub (public, for "
                                             "[admin] trusted_keys or jwt_public_key), both PEM.")
    keygen.add_argument("--out", required=True, metavar="NAME", help="file name without .key/.pub")
    keygen.set_defaults(run=_keygen)
    sign = commands.add_parser("sign", help="sign a module for upload to a server that requires signatures",
                               description="Write MODULE.sig: the base64 Ed25519 signature over the module's "
                                           "raw SHA-256 digest.")
    sign.add_argument("module", metavar="MODULE")
    sign.add_argument("--key", required=True, metavar="NAME.key")
    sign.add_argument("--out", metavar="FILE", help="default MODULE.sig")
    sign.set_defaults(run=_sign)
    token = commands.add_parser("token", help="make an admin token (scope mwhost:admin)",
                                description="Sign an admin JWT: EdDSA with --key, else HS256 with "
                                            "$MWHOST_ADMIN_JWT_SECRET or the --config file's [admin] jwt_secret.")
    token.add_argument("--key", metavar="NAME.key", help="Ed25519 private key (the server has NAME.pub as "
                                                         "[admin] jwt_public_key)")
    token.add_argument("--config", metavar="FILE", help="an mwhost.toml with [admin] jwt_secret")
    token.add_argument("--sub", default=os.environ.get("USER", "admin"), help="who the token names (audit log)")
    token.add_argument("--hours", type=float, default=12.0, help="lifetime in hours (default 12)")
    token.set_defaults(run=_token)


def _keygen(args: argparse.Namespace) -> int:
    from .admin.signatures import fingerprint, keygen
    from .admin.auth import load_public_key

    private, public = keygen(args.out)
    print(f"wrote {private} (keep it secret) and {public} (key {fingerprint(load_public_key(public, str(public)))})")
    return 0


def _sign(args: argparse.Namespace) -> int:
    import hashlib

    from .admin.auth import load_private_key
    from .admin.signatures import encode_signature, fingerprint, sign
    from .registry import read_module_file

    wasm = read_module_file(pathlib.Path(args.module))
    key = load_private_key(pathlib.Path(args.key))
    out = pathlib.Path(args.out or f"{args.module}.sig")
    try:
        out.write_text(encode_signature(sign(wasm, key)) + "\n")
    except OSError as err:
        raise HostError(f"cannot write the signature {out}: {err.strerror or err}") from err
    print(f"wrote {out}: Ed25519 signature over sha256 {hashlib.sha256(wasm).hexdigest()} "
          f"(key {fingerprint(key.public_key())})")
    return 0


def _token(args: argparse.Namespace) -> int:
    from .admin.auth import SECRET_ENV, load_private_key, mint_token
    from .settings import load_settings

    if args.key:
        key = load_private_key(pathlib.Path(args.key))
    else:
        key = os.environ.get(SECRET_ENV) or (load_settings(args.config).admin.jwt_secret if args.config else "")
        if not key:
            raise HostError(f"no key: pass --key NAME.key, set ${SECRET_ENV}, or --config with [admin] jwt_secret")
    print(mint_token(key, sub=args.sub, ttl_s=args.hours * 3600))
    return 0


class UsageError(HostError):
    """A wrong invocation found after parsing (flags that do not go together)."""


class _Parser(argparse.ArgumentParser):
    """Every wrong invocation exits 2 with one line that says what to fix (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mwhost", description="Run HTTP middleware compiled to WebAssembly.")
    parser.add_argument("--version", action="version", version=f"mwhost {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_validate(commands)
    _add_client_commands(commands)
    _add_rollout_commands(commands)
    _add_key_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("text")
    try:
        return args.run(args)
    except HostError as err:
        print(f"mwhost: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
