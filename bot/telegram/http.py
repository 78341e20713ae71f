"""An aiohttp backend for python-telegram-bot: `AiohttpRequest`, a `telegram.request.BaseRequest`.

This module owns how the bot speaks HTTP: the Application sends every request through it (getUpdates
included), and so does `send-digest`, because the cost per request matters (the digest broadcast sends up
to a thousand messages a second). The bot stays a real `telegram.Bot` and PTB still turns Telegram's answers
into `RetryAfter`, `Forbidden`, `BadRequest` and so on; what changes is the transport: one pooled aiohttp
`ClientSession` (keep-alive connections, at most `connection_pool_size` of them) instead of httpx, whose
general-purpose machinery (URL-encoding a 4 KB text character by character, per-request pool bookkeeping,
anyio) cost more CPU per request than everything else the bot does. Requests go as one JSON body
(multipart/form-data only when a file is uploaded). PTB's four timeouts and its error mapping follow
`HTTPXRequest`: a full pool waits at most `pool_timeout` and then raises `TimedOut` with httpx's pool message,
other timeouts raise `TimedOut`, other transport failures `NetworkError`. Error messages never contain the URL,
which holds the token.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

POOL_TIMEOUT_MESSAGE = (  # the words HTTPXRequest uses, so logs read the same whichever backend is in use
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent to Telegram. "
    "Consider adjusting the connection pool size or the pool timeout."
)
_JSON_HEADERS = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A `telegram.request.BaseRequest` over one pooled aiohttp session; JSON request bodies.

    The arguments mean what they mean for `HTTPXRequest` (same defaults). aiohttp has no write timeout of its
    own, so a request's whole exchange is bounded by connect + write + read timeout (when all three are set);
    `connect_timeout` bounds opening a connection (TLS included) and `read_timeout` each wait for the answer.
    `proxy` is an http(s) proxy URL for every request; `keepalive_expiry` is how long an idle connection is
    kept for reuse.
    """

    __slots__ = (
        "_connect_timeout",
        "_keepalive_expiry",
        "_media_write_timeout",
        "_pool_timeout",
        "_proxy",
        "_read_timeout",
        "_session",
        "_slots",
        "_timeouts",
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
        proxy: str | None = None,
        keepalive_expiry: float = 15.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self.connection_pool_size = connection_pool_size
        self._read_timeout, self._write_timeout = read_timeout, write_timeout
        self._connect_timeout, self._pool_timeout = connect_timeout, pool_timeout
        self._media_write_timeout = media_write_timeout
        self._proxy = proxy
        self._keepalive_expiry = keepalive_expiry
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}
        # Created in initialize(): an aiohttp session belongs to the running event loop.
        self._session: aiohttp.ClientSession | None = None
        # Our own pool gate (the connector has the same limit, so it never waits itself): aiohttp's connect
        # timeout covers both waiting for the pool and connecting, and PTB tells a full pool apart.
        self._slots: asyncio.Semaphore | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.connection_pool_size, limit_per_host=0, keepalive_timeout=self._keepalive_expiry
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                json_serialize=json.dumps,
                timeout=aiohttp.ClientTimeout(total=None),
                raise_for_status=False,
            )
            self._slots = asyncio.Semaphore(self.connection_pool_size)

    async def shutdown(self) -> None:
        session, self._session, self._slots = self._session, None, None
        if session is not None and not session.closed:
            await session.close()

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
        session, slots = self._session, self._slots
        if session is None or slots is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        uploads = request_data is not None and request_data.contains_files
        if _default(write_timeout):
            write_timeout = self._media_write_timeout if uploads else self._write_timeout
        timeout = self._timeout(
            self._connect_timeout if _default(connect_timeout) else connect_timeout,
            write_timeout,
            self._read_timeout if _default(read_timeout) else read_timeout,
        )
        if request_data is None:
            body: Any = None
            headers = None
        elif uploads:
            body, headers = _form(request_data), None
        else:
            # Real JSON objects, not PTB's JSON-in-form-fields: one C-speed dumps, no percent-encoding.
            body = json.dumps(request_data.parameters, ensure_ascii=False).encode()
            headers = _JSON_HEADERS

        if slots.locked():  # only a full pool pays for a timeout
            try:
                async with asyncio.timeout(self._pool_timeout if _default(pool_timeout) else pool_timeout):
                    await slots.acquire()
            except TimeoutError:
                raise TimedOut(POOL_TIMEOUT_MESSAGE) from None
        else:
            await slots.acquire()
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=timeout, proxy=self._proxy
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError and ConnectionTimeoutError are TimeoutErrors
            raise TimedOut from exc
        except (aiohttp.ClientError, OSError) as exc:
            text = str(exc)
            message = _without_url(text, url)
            # Chained for the traceback, unless the cause itself shows the URL (an invalid URL, say).
            cause = exc if message == text and url not in repr(exc) else None
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {message}") from cause
        finally:
            slots.release()

    def _timeout(
        self, connect: float | None, write: float | None, read: float | None
    ) -> aiohttp.ClientTimeout:  # one object per distinct triple: PTB passes the same few over and over
        key = (connect, write, read)
        timeout = self._timeouts.get(key)
        if timeout is None:
            total = None if None in key else connect + write + read  # type: ignore[operator]
            timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_read=read)
            if len(self._timeouts) < 64:
                self._timeouts[key] = timeout
        return timeout


def _form(request_data: RequestData) -> aiohttp.FormData:
    """multipart/form-data: PTB's JSON-encoded fields, then the files (bytes, or file handles in PTB >= 21.5)."""
    form = aiohttp.FormData(request_data.json_parameters)
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename or name, content_type=mimetype)
    return form


def _without_url(text: str, url: str) -> str:
    """`text` with the URL, its path and any percent-encoded form of them removed (the path holds the token)."""
    path = urllib.parse.urlsplit(url).path
    for secret in (url, path, urllib.parse.quote(path, safe="/"), urllib.parse.unquote(path)):
        if secret and secret != "/":
            text = text.replace(secret, "<url>")
    return text


def _default(value: Any) -> bool:
    return value is BaseRequest.DEFAULT_NONE  # the timeout was not passed: use the one given to __init__
