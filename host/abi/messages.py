"""Decoded guest outputs: what a stage asked the host to do."""

from __future__ import annotations

Headers = list  # list[tuple[str, str]] | list[list[str]]: pairs in order, names lower case


class Action:
    """The result of ``mw_on_request``: continue (with edits) or respond (short-circuit)."""

    __slots__ = (
        "respond", "status", "headers", "body",
        "set_headers", "remove_headers", "path", "query", "ctx", "response_headers",
    )

    respond: bool
    status: int
    headers: Headers | None
    body: bytes | None
    set_headers: Headers | None
    remove_headers: list[str] | None
    path: str | None
    query: str | None
    ctx: dict[str, str] | None
    response_headers: Headers | None

    def __init__(self, respond: bool = False, status: int = 0, headers: Headers | None = None,
                 body: bytes | None = None, set_headers: Headers | None = None,
                 remove_headers: list[str] | None = None, path: str | None = None,
                 query: str | None = None, ctx: dict[str, str] | None = None,
                 response_headers: Headers | None = None) -> None:
        self.respond = respond
        self.status = status
        self.headers = headers
        self.body = body
        self.set_headers = set_headers
        self.remove_headers = remove_headers
        self.path = path
        self.query = query
        self.ctx = ctx
        self.response_headers = response_headers

    @property
    def edits_request(self) -> bool:
        """True when applying this action changes the request the app will see."""
        return bool(self.set_headers or self.remove_headers or self.path is not None
                    or self.query is not None)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__
                           if getattr(self, name) not in (None, False, 0))
        return f"Action({fields})"


class ResponseAction:
    """The result of ``mw_on_response``: edits to the response; all optional."""

    __slots__ = ("status", "set_headers", "remove_headers", "body")

    status: int | None
    set_headers: Headers | None
    remove_headers: list[str] | None
    body: bytes | None

    def __init__(self, status: int | None = None, set_headers: Headers | None = None,
                 remove_headers: list[str] | None = None, body: bytes | None = None) -> None:
        self.status = status
        self.set_headers = set_headers
        self.remove_headers = remove_headers
        self.body = body

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__
                           if getattr(self, name) is not None)
        return f"ResponseAction({fields})"


#: shared result for the common ``{"action": "continue"}``; never mutated
CONTINUE = Action()
#: shared result for an empty response action; never mutated
UNCHANGED = ResponseAction()
