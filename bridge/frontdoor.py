"""The gunicorn worker the bridge runs: gunicorn's threaded worker, with a front door.

Why: gunicorn's ``gthread`` worker hands a connection to one of its threads at the first byte,
and the thread then waits for the rest of the request. A client that sends its headers one
line every 2 s, or its body a byte at a time, holds that thread all along. With 2 workers x 8
threads, 17 such connections (a scanner, a broken script, someone who means harm) leave no
thread for a real TradingView alert, and TradingView gives up after 3 s.

What this worker does instead: its main loop, which already accepts connections and watches
kept-alive ones, reads whatever each connection has sent, without ever waiting, into a buffer
until the request is whole: the head up to its blank line, then the body (Content-Length
bytes, or a chunked body up to its last chunk and trailers). Only then does a thread get the
connection, with those bytes pushed back into gunicorn's own parser, so the thread parses and
answers from memory. A kept-alive connection's next request goes through the same door.

- The head must arrive within ``HEAD_TIMEOUT_S`` of the connection (or of a kept-alive
  connection's next byte), the body within ``BODY_TIMEOUT_S`` after the head; a connection
  late with its request is answered 408 (if it sent anything at all) and closed. A stopping
  worker gives them 2 s more at most.
- A request larger than ``MAX_REQUEST_BYTES`` is answered 413 (431 when the head alone is)
  and closed. The cap is above the app's own 128 KB limit, so a body the app refuses still
  gets the app's plain-words 413.
- A head this module cannot frame (two Content-Lengths, a bare LF ...) goes to gunicorn at
  once: everything gunicorn needs to refuse it is already here.
- Closing after "Connection: close" waits for the client's side without blocking the loop
  (gthread would wait up to 2 s on the loop itself).

What a trader gains: however many slow, idle or half-open connections are open to the
bridge's port, an alert that arrives whole goes straight to a free thread and is answered in
the usual few tens of milliseconds, never after TradingView's 3 s. Behind nginx or Caddy
(deploy/README.md, "Slow or hostile clients") the proxy already buffers whole requests and a
request arrives here in one read: the door costs nothing there and guards the bridge's port
if it is ever exposed.

Limits: plain HTTP/1.x. With gunicorn's own TLS (``certfile``) the bytes are encrypted and
cannot be framed here, so the worker then behaves exactly like ``gthread``. Connections beyond
``worker_connections`` per worker wait in the kernel's queue, as with ``gthread``.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import re
import selectors
import socket
import threading
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

HEAD_TIMEOUT_S = 5.0
BODY_TIMEOUT_S = 10.0
# The app refuses bodies over 128 KB itself (bridge.config max_body_bytes); room for the head.
MAX_REQUEST_BYTES = 256 * 1024
MAX_HEAD_BYTES = 64 * 1024
# A thread still reads or writes the socket (gunicorn's parser, the response): bounded, so a
# framing disagreement or a client that does not read its answer cannot hold a thread long.
THREAD_SOCKET_TIMEOUT_S = 10.0
# Lingering after "Connection: close" (RFC 9112 section 9.6), as gunicorn's close_graceful.
LINGER_S = 2.0
LINGER_MAX_BYTES = 64 * 1024
# Expired connections are looked for at most this often: under a flood of small reads the
# loop must spend its time reading, not scanning.
SWEEP_EVERY_S = 0.25
_READ_SIZE = 64 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]+")


class Verdict(enum.Enum):
    WAIT = "wait"  # more bytes are needed
    WHOLE = "whole"  # the first request is complete: hand it to a thread
    MALFORMED = "malformed"  # gunicorn will refuse it from what is here: hand it over too
    HEAD_TOO_LARGE = "head too large"
    TOO_LARGE = "too large"


class Framing:
    """How far one request has been read. Incremental: each read resumes where the last
    stopped, so a client sending a byte at a time costs a few comparisons per byte, not a
    rescan of everything it sent."""

    def __init__(self) -> None:
        self.scanned = 0  # the blank line ending the head is not before this offset
        self.head_end = 0  # offset just past the head's blank line; 0 while incomplete
        self.length: int | None = None  # Content-Length
        self.chunked = False
        self.chunk_at = 0  # chunked: offset of the next chunk-size (or trailer) line
        self.in_trailers = False
        self.expects_continue = False

    def advance(self, data: bytes | bytearray) -> Verdict:
        if not self.head_end:
            verdict = self._head(data)
            if verdict is not None:
                return verdict
        if self.chunked:
            if len(data) > MAX_REQUEST_BYTES:
                return Verdict.TOO_LARGE
            return self._chunks(data)
        return Verdict.WHOLE if len(data) >= self.head_end + (self.length or 0) else Verdict.WAIT

    def _head(self, data: bytes | bytearray) -> Verdict | None:
        # RFC 9112 section 2.2: one empty line before the request line is ignored (as gunicorn).
        start = 2 if data[:2] == b"\r\n" else 0
        end = data.find(b"\r\n\r\n", max(start, self.scanned - 3))
        self.scanned = len(data)
        if end < 0:
            # gunicorn refuses a bare LF at once instead of waiting for more: so does this.
            if data.count(b"\n") != data.count(b"\r\n"):
                return Verdict.MALFORMED
            return Verdict.HEAD_TOO_LARGE if len(data) > MAX_HEAD_BYTES else Verdict.WAIT
        if end + 4 > MAX_HEAD_BYTES:
            return Verdict.HEAD_TOO_LARGE
        head = bytes(data[start:end])
        if head.count(b"\n") != head.count(b"\r\n"):
            return Verdict.MALFORMED
        self.head_end = end + 4
        self.chunk_at = self.head_end
        if not self._read_fields(head):
            return Verdict.MALFORMED
        if self.length is not None and self.head_end + self.length > MAX_REQUEST_BYTES:
            return Verdict.TOO_LARGE
        return None

    def _read_fields(self, head: bytes) -> bool:
        """Content-Length, Transfer-Encoding and Expect, read as gunicorn reads them; False
        when gunicorn will refuse the head (so it can be handed over without its body)."""
        coded = False
        for line in head.split(b"\r\n")[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                continue  # gunicorn decides about such a line; it carries no framing
            name, value = name.lower(), value.strip(b" \t")
            if name == b"content-length":
                if self.length is not None or not value.isdigit():
                    return False
                self.length = int(value)
            elif name == b"transfer-encoding":
                coded = True
                codings = [coding.strip(b" \t").lower() for coding in value.split(b",")]
                self.chunked = self.chunked or b"chunked" in codings
            elif name == b"expect":
                self.expects_continue = value.lower() == b"100-continue"
        # gunicorn refuses a Transfer-Encoding without chunked, and one beside Content-Length.
        return not (coded and (not self.chunked or self.length is not None))

    def _chunks(self, data: bytes | bytearray) -> Verdict:
        while True:
            eol = data.find(b"\r\n", self.chunk_at)
            if eol < 0:
                return Verdict.WAIT
            line = bytes(data[self.chunk_at:eol])
            if self.in_trailers:
                if not line:
                    return Verdict.WHOLE  # the empty line after the trailers
                self.chunk_at = eol + 2
                continue
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not _HEX.fullmatch(size_text):
                return Verdict.MALFORMED
            size = int(size_text, 16)
            if size == 0:
                self.in_trailers = True
                self.chunk_at = eol + 2
                continue
            if self.chunk_at + size > MAX_REQUEST_BYTES:
                return Verdict.TOO_LARGE
            data_end = eol + 2 + size
            if len(data) < data_end + 2:
                return Verdict.WAIT
            if data[data_end:data_end + 2] != b"\r\n":
                return Verdict.MALFORMED
            self.chunk_at = data_end + 2


_ANSWERS = {
    408: b"408 Request Timeout", 413: b"413 Content Too Large",
    431: b"431 Request Header Fields Too Large",
}


def _answer(status: int) -> bytes:
    reason = _ANSWERS[status]
    text = reason.split(b" ", 1)[1].lower() + b"\n"
    return (b"HTTP/1.1 " + reason + b"\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(text)).encode() + b"\r\n\r\n" + text)


class FrontConn(TConn):  # type: ignore[misc]  # gunicorn has no type hints: TConn is Any
    """A connection with the bytes the main loop has read for its next request."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any,
                 worker: FrontDoorWorker) -> None:
        super().__init__(cfg, sock, client, server)
        self.worker = worker
        self.received = bytearray()
        self.framing = Framing()
        self.deadline = 0.0
        self.continued = False
        self.lingering = False
        self.drained = 0

    def init(self) -> None:
        """Runs in the thread: gunicorn's parser gets the buffered request first."""
        super().init()
        if self.received:
            self.parser.unreader.unread(bytes(self.received))
            self.received = bytearray()
        self.sock.settimeout(THREAD_SOCKET_TIMEOUT_S)

    def close(self, graceful: bool = False) -> None:
        if graceful and self.worker.on_loop():
            self.worker.linger(self)
        else:
            super().close(graceful)


class FrontDoorWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """``gthread`` whose threads only ever get whole requests (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections being read for a request, or lingering before their close: the loop's
        # own, never a thread's. A dict keeps insertion order and removes in O(1).
        self.waiting: dict[FrontConn, None] = {}
        self.loop_thread = 0
        self.next_sweep = 0.0
        self.stop_capped = False

    def init_process(self) -> None:
        self.loop_thread = threading.get_ident()
        super().init_process()

    def on_loop(self) -> bool:
        return threading.get_ident() == self.loop_thread

    @property
    def framing_here(self) -> bool:
        return not self.cfg.is_ssl

    def accept(self, listener: socket.socket) -> None:
        if not self.framing_here:
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.gather(FrontConn(self.cfg, client_sock, client_addr, listener.getsockname(), self))

    def enqueue_req(self, conn: Any) -> None:
        """gthread calls this for a kept-alive connection that became readable, and for one
        whose parser already holds bytes of its next request: read that request here first."""
        if self.framing_here and isinstance(conn, FrontConn):
            self.gather(conn)
        else:
            super().enqueue_req(conn)

    def gather(self, conn: FrontConn) -> None:
        conn.sock.setblocking(False)
        if conn.parser is not None:
            conn.received[:0] = conn.parser.unreader.take_buffered()
        conn.framing = Framing()
        conn.continued = False
        conn.deadline = time.monotonic() + HEAD_TIMEOUT_S
        if self.stop_capped:
            conn.deadline = min(conn.deadline, time.monotonic() + LINGER_S)
        self.waiting[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_readable, conn))
        if conn.received:
            self.judge(conn)

    def on_readable(self, conn: FrontConn, _fileobj: object) -> None:
        data = _read(conn)
        if data is None:
            return
        if not data:  # the client went away before its request was whole
            self.drop(conn)
            return
        conn.received += data
        self.judge(conn)

    def judge(self, conn: FrontConn) -> None:
        had_head = bool(conn.framing.head_end)
        verdict = conn.framing.advance(conn.received)
        if verdict in (Verdict.WHOLE, Verdict.MALFORMED):
            self.hand_over(conn)
        elif verdict is Verdict.TOO_LARGE:
            self.drop(conn, 413)
        elif verdict is Verdict.HEAD_TOO_LARGE:
            self.drop(conn, 431)
        elif conn.framing.head_end and not had_head:
            conn.deadline = time.monotonic() + BODY_TIMEOUT_S
            if self.stop_capped:
                conn.deadline = min(conn.deadline, time.monotonic() + LINGER_S)
            if conn.framing.expects_continue and not conn.continued:
                # The client waits for this before sending its body. gunicorn sends its own
                # again later; a client must accept extra 1xx answers (RFC 9110 15.2).
                conn.continued = True
                self.send_quietly(conn, b"HTTP/1.1 100 Continue\r\n\r\n")

    def hand_over(self, conn: FrontConn) -> None:
        self.waiting.pop(conn, None)
        self.poller.unregister(conn.sock)
        # The bytes are already read: gthread must not wait for the socket to turn readable.
        conn.data_ready = True
        super().enqueue_req(conn)

    def drop(self, conn: FrontConn, status: int | None = None) -> None:
        """Close a connection that never completed a request (answering ``status`` first)."""
        self.forget(conn)
        if status is not None:
            self.log.debug("Front door: %s from %s", status, conn.client)
            self.send_quietly(conn, _answer(status))
        self.nr_conns -= 1
        util.close(conn.sock)

    @staticmethod
    def send_quietly(conn: FrontConn, data: bytes) -> None:
        # A few bytes on a socket that has sent nothing back: they fit its buffer, and a
        # client that is gone or full loses an answer it would not read anyway.
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def linger(self, conn: FrontConn) -> None:
        """gthread's close after "Connection: close", without blocking the loop: send FIN,
        then read what the client still sends until it closes (or 2 s / 64 KB), then close."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            util.close(conn.sock)
            return
        conn.lingering = True
        conn.drained = 0
        conn.deadline = time.monotonic() + LINGER_S
        self.waiting[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_lingering, conn))

    def on_lingering(self, conn: FrontConn, _fileobj: object) -> None:
        data = _read(conn)
        if data is None:
            return
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_MAX_BYTES:
            self.end_linger(conn)

    def end_linger(self, conn: FrontConn) -> None:
        # gthread counted this connection out already, before closing it.
        self.forget(conn)
        util.close(conn.sock)

    def forget(self, conn: FrontConn) -> None:
        self.waiting.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def murder_pending(self) -> None:
        """gthread's loop calls this after every wait: also close what is past its deadline."""
        super().murder_pending()
        now = time.monotonic()
        if not self.alive and not self.stop_capped:
            # A stopping worker finishes requests already arriving, but not a slow client's.
            self.stop_capped = True
            self.next_sweep = 0.0
            for conn in self.waiting:
                conn.deadline = min(conn.deadline, now + LINGER_S)
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_EVERY_S
        for conn in [c for c in self.waiting if c.deadline <= now]:
            if conn.lingering:
                self.end_linger(conn)
            else:
                self.drop(conn, 408 if conn.received else None)


def _read(conn: FrontConn) -> bytes | None:
    """What the socket has now: ``None`` when nothing yet, ``b""`` when the client is gone."""
    try:
        data: bytes = conn.sock.recv(_READ_SIZE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""
    return data
