"""Fleet fixtures: a private redis-server per test."""

from __future__ import annotations

import pytest

from tests.fleet.redis_process import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
