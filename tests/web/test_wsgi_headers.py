"""Edits written back to the WSGI environ: only the edited names change, repeated values are
joined, removed names go, and the one-name case (add_header's) gives the same environ."""

from __future__ import annotations

import pytest

from mwhost.web.wsgi_headers import write_environ_headers


@pytest.mark.parametrize("headers, names, expected", [
    ([("x-demo", "1")], {"x-demo"}, {"HTTP_X_DEMO": "1"}),                       # the one-name case
    ([("content-type", "a/b")], {"content-type"}, {"CONTENT_TYPE": "a/b"}),     # unprefixed key
    ([("x-demo", "1"), ("x-demo", "2")], {"x-demo"}, {"HTTP_X_DEMO": "1, 2"}),  # joined
    ([], {"accept"}, {}),                                                        # removed
    ([("x-a", "1")], {"x-a", "accept"}, {"HTTP_X_A": "1"}),                      # set one, remove one
    ([("accept", "keep"), ("x-b", "2")], {"x-b"}, {"HTTP_ACCEPT": "*/*", "HTTP_X_B": "2"}),  # others untouched
    ([("x-a", "1"), ("x-b", "2"), ("accept", "3")], {"x-a", "x-b", "accept"},  # one pair per name
     {"HTTP_X_A": "1", "HTTP_X_B": "2", "HTTP_ACCEPT": "3"}),
    ([("x-a", "1"), ("x-a", "2")], {"x-a", "accept"}, {"HTTP_X_A": "1, 2"}),     # as many pairs as names
    ([("x-a", "1"), ("x-c", "2")], {"x-a", "x-b"}, {"HTTP_X_A": "1"}),           # a pair of no edited name
])
def test_only_edited_names_change(headers, names, expected):
    """Each edited name ends with exactly its listed values; every other key stays as it was."""
    env = {"HTTP_ACCEPT": "*/*", "PATH_INFO": "/"}
    write_environ_headers(env, headers, names)
    assert env == {"PATH_INFO": "/", **({"HTTP_ACCEPT": "*/*"} if "accept" not in names else {}), **expected}
