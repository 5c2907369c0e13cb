"""The ``mwhost`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import pathlib
import sys

from . import __version__
from .errors import HostError
from .settings import SERVER_KEYS

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
    serve.set_defaults(run=_serve)


def _add_validate(commands) -> None:
    validate = commands.add_parser("validate", help="check a module offline against ABI v1",
                                   description="Compile a module, check its exports and imports, instantiate "
                                               "it and (with --config) run mw_init, without serving it.")
    validate.add_argument("module", metavar="FILE", help="a .wasm file")
    validate.add_argument("--config", metavar="JSON", default="{}", help="the stage config as JSON (default {})")
    validate.set_defaults(run=_validate)


def _serve(args: argparse.Namespace) -> int:
    from .registry import demo_settings
    from .server import HostApplication, gunicorn_options
    from .settings import load_settings

    if args.config:
        settings = load_settings(args.config)
    else:
        settings = demo_settings(pathlib.Path(args.data_dir or SERVER_KEYS["data_dir"].default).resolve())
    overrides = {"bind": args.bind, "workers": args.workers, "worker_class": args.worker_class,
                 "threads": args.threads,
                 "data_dir": pathlib.Path(args.data_dir).resolve() if args.data_dir else None,
                 "drop_dir": pathlib.Path(args.drop_dir).resolve() if args.drop_dir else None}
    settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    application = HostApplication(settings, gunicorn_options(settings))
    count = application.precompile()
    logger.info("pipeline of %d stage(s) checked; data in %s", count, settings.data_dir)
    application.run()
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .pipeline import Stage
    from .registry import CompileCache, read_module_file
    from .runtime import Runtime
    from .settings import StageSettings

    try:
        config = json.loads(args.config)
    except json.JSONDecodeError as err:
        raise HostError(f"--config is not valid JSON: {err}") from err
    path = pathlib.Path(args.module)
    settings = StageSettings(name=path.stem.replace(" ", "_") or "module", module=path, config=config)
    stage = Stage.load(settings, read_module_file(path), CompileCache(Runtime(), None))
    stage.close()
    phases = "request and response" if stage.has_on_response else "request"
    print(f"{path}: ok (ABI v1, sha256 {stage.version}, {phases} phase)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mwhost", description="Run HTTP middleware compiled to WebAssembly.")
    parser.add_argument("--version", action="version", version=f"mwhost {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_validate(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except HostError as err:
        print(f"mwhost: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
