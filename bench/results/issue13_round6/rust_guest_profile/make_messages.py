"""request.bin (the Request wrk's requests become: 2 headers) and config.bin for main.rs.

Usage: .venv/bin/python bench/results/issue13_round6/rust_guest_profile/make_messages.py OUTDIR"""
import pathlib
import sys

from mwhost.abi import Codec

out = pathlib.Path(sys.argv[1])
codec = Codec()
(out / "request.bin").write_bytes(codec.encode_request(
    "GET", "/bench/items", "limit=10", [("host", "127.0.0.1:8000"), ("connection", "close")], "127.0.0.1", "http", {}))
(out / "config.bin").write_bytes(codec.encode_config({}))
