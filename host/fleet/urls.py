"""A fleet URL as redis-py reads it: ``mwhost serve`` checks it before anything starts."""

from __future__ import annotations

import redis


def redis_refusal(url: str) -> str | None:
    """What redis-py says about ``url`` when it builds a connection from it (none is opened):
    its query options (``?db=x``, an unknown option) are refused in one line, not by a
    traceback at start; None when it takes the URL."""
    try:
        pool = redis.ConnectionPool.from_url(url)
        pool.make_connection()
    except ValueError as err:
        return f"is refused by redis-py: {err}"
    except TypeError as err:  # an option redis-py does not know: "unexpected keyword argument 'x'"
        return f"has an option redis-py does not know: {str(err).rsplit(' ', 1)[-1]}"
    pool.disconnect()
    return None
