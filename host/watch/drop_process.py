"""The drop folder as its own process: ``python -m mwhost.watch.drop_process DATA_DIR DROP_DIR``.

``mwhost serve`` starts it beside the gunicorn master (which must hold no wasmtime state of
its own, see host/server.py) and stops it with SIGTERM. The host's ``[admin] trusted_keys``
come in ``$MWHOST_DROP_TRUSTED_KEYS`` (paths joined by ``os.pathsep``): with any, a dropped
``NAME.wasm`` needs a valid ``NAME.wasm.sig`` (else it is refused and audited), checked before
anything is written to the fleet.
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
from .drop import TRUSTED_KEYS_ENV
from .drop import DropFolder
from .live import LivePipeline


def main(argv: list[str]) -> int:
    data_dir, drop_dir = (pathlib.Path(arg) for arg in argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    fleet = FleetSettings(url=os.environ.get(FLEET_URL_ENV, ""), name=os.environ.get(FLEET_NAME_ENV, "default"))
    trusted_keys = tuple(pathlib.Path(path) for path in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep) if path)
    live = LivePipeline(data_dir, Runtime(parallel_compilation=True), fleet=fleet, trusted_keys=trusted_keys)
    drop = DropFolder(drop_dir, live.store, live.cache, live.manifests, audit=live.audit_log(),
                      trusted_keys=trusted_keys)
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
