"""The drop folder as its own process: ``python -m mwhost.watch.drop_process DATA_DIR DROP_DIR``.

``mwhost serve`` starts it beside the gunicorn master (which must hold no wasmtime state of
its own, see host/server.py) and stops it with SIGTERM.
"""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import sys
import threading

from ..runtime import Runtime
from ..settings import FLEET_NAME_ENV, FLEET_URL_ENV, FleetSettings
from .drop import DropFolder
from .live import LivePipeline


def main(argv: list[str]) -> int:
    data_dir, drop_dir = (pathlib.Path(arg) for arg in argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    fleet = FleetSettings(url=os.environ.get(FLEET_URL_ENV, ""), name=os.environ.get(FLEET_NAME_ENV, "default"))
    live = LivePipeline(data_dir, Runtime(parallel_compilation=True), fleet=fleet)
    drop = DropFolder(drop_dir, live.store, live.cache, live.manifests, audit=live.audit_log())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    drop.start()
    while not stop.wait(1.0):
        if os.getppid() != parent:  # the master died without stopping us
            break
    drop.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
