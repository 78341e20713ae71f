"""A lean HTTP/1.1 backend for python-telegram-bot: `LeanRequest`, keep-alive connections on asyncio streams.

This module owns how the bot speaks HTTP when the cost per request matters (the digest broadcast sends up
to a thousand messages a second). It implements PTB's `telegram.request.BaseRequest`, so the bot stays a
real `telegram.Bot` and PTB still turns Telegram's answers into `RetryAfter`, `Forbidden`, `BadRequest` and
so on; what it replaces is httpx's general-purpose machinery (URL-encoding a 4 KB text character by
character, pool bookkeeping that polls every connection's socket, anyio), which cost more CPU per request
than everything else the bot does. It keeps a pool of keep-alive HTTP/1.1 connections (TLS for https),
sends JSON bodies (multipart only when a file is uploaded), reads Content-Length, chunked and
close-delimited responses, and honours PTB's four timeouts the way `HTTPXRequest` does. Not supported:
proxies and HTTP/2 (use `HTTPXRequest` for those). Error messages never contain the URL, which holds the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
import time
import urllib.parse
import uuid
from typing import Any

from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_Origin = tuple[str, str, int]  # scheme, host, port
_USER_AGENT = f"User-Agent: {BaseRequest.USER_AGENT}\r\n".encode()
MAX_HEAD = 64 * 1024  # response status line and headers; Telegram's are well under 1 KB
POOL_TIMEOUT_MESSAGE = (  # the words HTTPXRequest uses, so logs read the same whichever backend is in use
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent to Telegram. "
    "Consider adjusting the connection pool size or the pool timeout."
)


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[_Origin, bytes]:
    """The origin of an absolute http(s) URL and the start of its request head (request line and Host)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NetworkError("LeanRequest: only absolute http:// and https:// URLs are supported")
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port != default_port:
        host = f"{host}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        head = f" {path} HTTP/1.1\r\nHost: {host}\r\n".encode("ascii")
    except UnicodeEncodeError:  # not the URL in the message: it holds the token
        raise NetworkError("LeanRequest: the URL must be ASCII (percent-encoded)") from None
    return (parts.scheme, parts.hostname, port), head


def _body(request_data: RequestData | None) -> tuple[bytes | None, str | None]:
    """(body, content type): JSON, or multipart/form-data when the request uploads files."""
    if request_data is None:
        return None, None
    if not request_data.contains_files:
        # Real JSON objects, not PTB's JSON-in-form-fields: one C-speed dumps, no percent-encoding.
        return json.dumps(request_data.parameters, ensure_ascii=False).encode(), "application/json"
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in request_data.json_parameters.items():
        chunks += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode(), value.encode()]
        chunks.append(b"\r\n")
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        if not isinstance(content, bytes):
            content = content.read()  # a file handle (PTB >= 21.5)
        quoted = (filename or name).replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")
        disposition = f'Content-Disposition: form-data; name="{name}"; filename="{quoted}"'
        chunks += [f"--{boundary}\r\n{disposition}\r\nContent-Type: {mimetype}\r\n\r\n".encode(), content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class _Connection:
    __slots__ = ("idle_since", "origin", "reader", "writer")

    def __init__(self, origin: _Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.origin, self.reader, self.writer = origin, reader, writer
        self.idle_since = 0.0

    def reusable(self, now: float, expiry: float) -> bool:
        # A server that closed an idle connection has fed EOF (or an error) by now: cheap to see, no syscall.
        return (
            now - self.idle_since < expiry
            and not self.reader.at_eof()
            and self.reader.exception() is None
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.transport.abort()  # no graceful close: nothing more is owed on a connection given up


async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[int, bytes, bool]:
    """(status, body, keep the connection) of one HTTP/1.x response."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        status = int(rest[:3])
        if not 100 <= status < 200:
            break  # 1xx are interim answers (we never send Expect: 100-continue, but a server may)
    length: int | None = None
    chunked = False
    keep = version == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            value = value.lower()
            keep = b"close" not in value and (keep or b"keep-alive" in value)
    if method == "HEAD" or status in (204, 304):
        return status, b"", keep
    if chunked:
        return status, await _read_chunked(reader), keep
    if length is not None:
        return status, await reader.readexactly(length), keep
    return status, await reader.read(), False  # delimited by the server closing the connection


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, ignored
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


class LeanRequest(BaseRequest):
    """A `telegram.request.BaseRequest` over pooled keep-alive HTTP/1.1 connections; JSON request bodies.

    The arguments mean what they mean for `HTTPXRequest` (same defaults); `keepalive_expiry` is how long an
    idle connection may be reused (httpx's default, 5 s).
    """

    __slots__ = (
        "_connect_timeout",
        "_idle",
        "_keepalive_expiry",
        "_media_write_timeout",
        "_pool_timeout",
        "_read_timeout",
        "_slots",
        "_ssl",
        "_ssl_context",
        "_write_timeout",
        "connection_pool_size",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self.connection_pool_size = connection_pool_size
        self._read_timeout, self._write_timeout = read_timeout, write_timeout
        self._connect_timeout, self._pool_timeout = connect_timeout, pool_timeout
        self._media_write_timeout = media_write_timeout
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._ssl: ssl.SSLContext | None = ssl_context
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None  # one per connection that may be open; None: not initialized

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.connection_pool_size)

    async def shutdown(self) -> None:
        """Close the idle connections; one in use is closed when its request ends."""
        self._slots = None
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        slots = self._slots
        if slots is None:
            raise RuntimeError("This LeanRequest is not initialized!")
        origin, target = _target(url)
        body, content_type = _body(request_data)
        head = method.encode("ascii") + target + _USER_AGENT
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n".encode()
        elif method != "GET":
            head += b"Content-Length: 0\r\n"
        payload = head + b"\r\n" + (body or b"")
        if write_timeout is BaseRequest.DEFAULT_NONE:
            uploads = request_data is not None and request_data.contains_files
            write_timeout = self._media_write_timeout if uploads else self._write_timeout

        if slots.locked():  # only a full pool pays for a timeout
            try:
                async with asyncio.timeout(self._pool_timeout if _default(pool_timeout) else pool_timeout):
                    await slots.acquire()
            except TimeoutError:
                raise TimedOut(POOL_TIMEOUT_MESSAGE) from None
        else:
            await slots.acquire()
        connection: _Connection | None = None
        try:
            connection = self._idle_connection(origin)
            if connection is None:
                connection = await self._connect(
                    origin, self._connect_timeout if _default(connect_timeout) else connect_timeout
                )
            connection.writer.write(payload)
            if connection.writer.transport.get_write_buffer_size():  # the kernel did not take it all at once
                async with asyncio.timeout(write_timeout):  # type: ignore[arg-type]
                    await connection.writer.drain()
            async with asyncio.timeout(self._read_timeout if _default(read_timeout) else read_timeout):
                status, content, keep = await _read_response(connection.reader, method)
        except TimeoutError:
            raise TimedOut from None
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:  # IncompleteReadError is EOFError
            raise NetworkError(f"LeanRequest: {type(exc).__name__}: {exc}") from exc
        else:
            if keep and self._slots is slots:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(connection)
                connection = None
            return status, content
        finally:
            if connection is not None:  # failed, cancelled mid-request or not reusable: in an unknown state
                connection.close()
            slots.release()

    def _idle_connection(self, origin: _Origin) -> _Connection | None:
        """The most recently used idle connection to `origin` still worth reusing (older ones are closed)."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.reusable(now, self._keepalive_expiry):
                return connection
            connection.close()
        return None

    async def _connect(self, origin: _Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = _default_ssl_context()
            context = self._ssl
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host if context else None, limit=MAX_HEAD
            )
        return _Connection(origin, reader, writer)


def _default(value: Any) -> bool:
    return value is BaseRequest.DEFAULT_NONE  # the timeout was not passed: use the one given to __init__


def _default_ssl_context() -> ssl.SSLContext:
    """Certificate verification against certifi's bundle when present (as httpx does), else the system's."""
    with contextlib.suppress(ImportError):
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    return ssl.create_default_context()
