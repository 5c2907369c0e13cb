"""The gunicorn worker ``mwhost serve`` runs with ``worker_class = "gthread"`` (the default):
gunicorn's threaded worker, made safe against idle and slow clients.

gunicorn's gthread hands a connection to a pool thread as soon as it is readable, and the
thread then reads the request head with a blocking socket and no deadline; it also drains
unread bodies for 5 s and lingers up to 2 s on every close in its main loop. A few clients
that open connections and send nothing, or half a head, or half a body, so hold every thread
(or the main loop) and a normal GET waits. Here:

- the main loop reads each request head itself, without blocking, and gives the connection
  to a thread only once the head is complete; a head not complete within ``HEAD_TIMEOUT_S``
  of the connection (or of its keep-alive request) starting closes the connection;
- a thread's reads and writes on a client socket wait at most ``IO_TIMEOUT_S`` each;
- an unread body is drained for at most ``DRAIN_S``; past that the connection closes;
- closing lingers (RFC 9112 §9.6) in the main loop without blocking, for ``LINGER_S``.

Everything else (accepting, keep-alive, HTTP parsing, WSGI, graceful shutdown) is
gunicorn's. TLS and HTTP/2 connections are left to gunicorn's own code paths.
"""

from __future__ import annotations

import collections
import errno
import selectors
import socket
import time
from functools import partial

from gunicorn import http
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

#: a request head (request line and headers) must arrive within this many seconds
HEAD_TIMEOUT_S = 10.0
#: longest wait of one blocking read or write by a thread (a stalled body or reader)
IO_TIMEOUT_S = 10.0
#: how long a thread drains a request body the app left unread; a body still arriving then
#: closes the connection instead (the close lingers in the main loop, not in a thread)
DRAIN_S = 0.05
#: how long a closed connection is drained for the peer's FIN (RFC 9112 §9.6)
LINGER_S = 2.0
#: a head this long goes to the parser as is (it refuses what is over its limits)
MAX_HEAD_BYTES = 64 * 1024
_END_OF_HEAD = b"\r\n\r\n"


class TimedSocket(socket.socket):
    """A client socket whose blocking mode waits at most ``IO_TIMEOUT_S`` per call.

    NOTE: gthread switches a socket to blocking (``setblocking(True)``, timeout None) each
    time a thread takes it; turning that into a timeout here bounds every read and write of
    a thread without changing gunicorn's code.
    """

    __slots__ = ()

    @classmethod
    def adopt(cls, sock: socket.socket) -> "TimedSocket":
        return cls(sock.family, sock.type, sock.proto, fileno=sock.detach())

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(IO_TIMEOUT_S)
        else:
            super().setblocking(False)


class HostWorker(ThreadWorker):
    """gthread with request heads read in the main loop, bounded I/O and non-blocking closes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.heads: collections.deque[TConn] = collections.deque()     # oldest deadline first
        self.lingering: collections.deque[tuple[float, socket.socket]] = collections.deque()

    # ---- request heads, in the main loop ---------------------------------------------------

    def accept(self, listener) -> None:
        try:
            client, address = listener.accept()
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, TimedSocket.adopt(client), address, listener.getsockname())
        if self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, address):
            self.enqueue_req(conn)  # NOTE: TLS and HTTP/2 read differently: gunicorn's own path
            return
        self._wait_for_head(conn)

    def on_client_socket_readable(self, conn: TConn, client) -> None:
        """A kept-alive connection starts its next request: read its head here too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._wait_for_head(conn)

    def _wait_for_head(self, conn: TConn) -> None:
        conn.head = bytearray()
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT_S
        conn.sock.setblocking(False)
        self.heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, conn))

    def _read_head(self, conn: TConn, client) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before sending a whole head
            self._forget_head(conn)
            self.nr_conns -= 1
            conn.close()
            return
        conn.head += data
        if _END_OF_HEAD in conn.head or len(conn.head) >= MAX_HEAD_BYTES:
            self._forget_head(conn)
            if conn.parser is None:
                conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.parser.unreader.unread(bytes(conn.head))
            conn.head = bytearray()
            conn.data_ready = True
            self.enqueue_req(conn)

    def _forget_head(self, conn: TConn) -> None:
        self.poller.unregister(conn.sock)
        self.heads.remove(conn)

    def murder_pending(self) -> None:
        """gunicorn's expiry of waiting connections, plus heads past their deadline and
        lingering closes past theirs (all of them once the worker stops)."""
        super().murder_pending()
        now = time.monotonic()
        while self.heads and (self.heads[0].head_deadline <= now or not self.alive):
            conn = self.heads[0]
            self._forget_head(conn)
            self.nr_conns -= 1
            conn.close()
        while self.lingering and (self.lingering[0][0] <= now or not self.alive):
            self._end_linger(self.lingering[0][1])

    # ---- in a thread: short drains; closes handed back to the main loop ------------------------

    def handle(self, conn: TConn):
        keep = super().handle(conn)
        if keep is False:
            conn.linger = True  # finish_request closes it, in the main loop
        return keep

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        if not keepalive:
            return False
        return bool(conn.parser.finish_body(deadline=time.monotonic() + DRAIN_S))

    def finish_request(self, conn: TConn, fs) -> None:
        if not getattr(conn, "linger", False) or fs.cancelled():
            super().finish_request(conn, fs)
            return
        self.nr_conns -= 1
        self._linger(conn.sock)

    # ---- closing without blocking the main loop ------------------------------------------------

    def _linger(self, sock: socket.socket) -> None:
        """Half-close, then drain what the peer still sends until its FIN or ``LINGER_S``."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._drain_linger)
        except (OSError, ValueError, KeyError):
            sock.close()
            return
        self.lingering.append((time.monotonic() + LINGER_S, sock))

    def _drain_linger(self, sock: socket.socket) -> None:
        try:
            if sock.recv(65536):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._end_linger(sock)

    def _end_linger(self, sock: socket.socket) -> None:
        for i, (_, lingering) in enumerate(self.lingering):
            if lingering is sock:
                del self.lingering[i]
                break
        try:
            self.poller.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass
        sock.close()
