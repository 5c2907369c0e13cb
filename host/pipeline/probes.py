"""Probe requests: what a stage must answer properly before it serves (admission).

``GOLDEN_REQUESTS`` are ABI v1's golden request vectors (``abi/vectors/request_*``), shipped
here because the installed host must not read the repo's ``abi/`` folder; a test checks they
stay equal. ``GOLDEN_RESPONSE`` is ``response_typical``, for modules with a response phase.
"""

from __future__ import annotations

from typing import Any

GOLDEN_REQUESTS: dict[str, dict[str, Any]] = {
    "request_minimal": {
        "v": 1, "method": "GET", "path": "/", "query": "", "headers": [],
        "remote_addr": "127.0.0.1", "scheme": "http", "ctx": {},
    },
    "request_typical": {
        "v": 1, "method": "GET", "path": "/api/items", "query": "limit=10&sort=name",
        "headers": [
            ["host", "example.test"],
            ["user-agent", "curl/8.5.0"],
            ["accept", "*/*"],
            ["authorization", "Bearer abc.def.ghi"],
            ["x-forwarded-for", "10.0.0.1"],
            ["x-forwarded-for", "10.0.0.2"],
        ],
        "remote_addr": "192.0.2.7", "scheme": "https", "ctx": {"request_id": "r-42"},
    },
    "request_with_body": {
        "v": 1, "method": "POST", "path": "/upload", "query": "",
        "headers": [["content-type", "application/json"], ["content-length", "7"]],
        "remote_addr": "::1", "scheme": "http", "ctx": {}, "body": b'{"a":1}',
    },
    "request_unicode": {
        "v": 1, "method": "GET", "path": "/caf\u00e9/\u65e5\u672c", "query": "q=\u00fc",
        "headers": [["x-name", "J\u00fcrgen"]],
        "remote_addr": "127.0.0.1", "scheme": "http", "ctx": {"user": "\u00e9lodie"},
    },
}

GOLDEN_RESPONSE: dict[str, Any] = {
    "v": 1, "status": 200,
    "headers": [["content-type", "application/json"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]],
    "ctx": {"request_id": "r-42"},
    "request": {"method": "GET", "path": "/api/items"},
}
