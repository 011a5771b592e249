"""Real peers for the proxy's tests, all on 127.0.0.1: an HTTP upstream (uvicorn), raw TCP
upstreams with one behaviour each, and a listener that never answers a connect."""

import asyncio
import contextlib
import hashlib
import json
import select
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator

import uvicorn
from starlette.types import Receive, Scope, Send

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class HttpUpstream:
    """An ASGI app: ``POST /digest`` (size and SHA-256 of the body), ``GET /peer`` (the TCP
    peer it sees, to tell connections apart) and ``GET /stream`` (a chunked response whose
    first line is sent at once and the rest only after ``release`` is set)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        if scope["path"] == "/digest":
            digest, size, more = hashlib.sha256(), 0, True
            while more:
                message = await receive()
                body = message.get("body", b"")
                digest.update(body)
                size += len(body)
                more = message.get("more_body", False)
            await _send_json(send, {"bytes": size, "sha256": digest.hexdigest()})
        elif scope["path"] == "/peer":
            await _send_json(send, {"peer": list(scope["client"])})
        elif scope["path"] == "/stream":
            start = {"type": "http.response.start", "status": 200, "headers": []}
            await send(start)
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
            await self.release.wait()
            for index in range(3):
                chunk = f"chunk {index}\n".encode()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await _send_json(send, {"detail": "not found"}, status=404)


async def _send_json(send: Send, content: object, status: int = 200) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test's loop keeps its own signal handling


@contextlib.asynccontextmanager
async def http_upstream(app: HttpUpstream) -> AsyncIterator[int]:
    """Serve ``app`` with uvicorn in this loop on a free port; yields the port."""
    config = uvicorn.Config(app, host=LOOPBACK, port=0, log_level="warning", lifespan="off")
    server = _QuietServer(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the upstream did not start"
        await asyncio.sleep(0.01)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await serving


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class TcpUpstream:
    """A raw TCP server running ``handler`` per connection; ``close`` ends every handler."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "TcpUpstream":
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._handler(reader, writer)
        finally:
            writer.transport.abort()
            self._handlers.discard(task)


async def echo_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read until the peer half-closes, then send it all back and close."""
    data = await reader.read()
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


class Firehose:
    """A handler that writes until the connection breaks; ``cut`` is set then."""

    def __init__(self) -> None:
        self.cut = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                writer.write(b"x" * 65536)
                await writer.drain()
        except OSError:
            self.cut.set()


@contextlib.contextmanager
def unanswering_listener() -> Iterator[int]:
    """A listening port whose accept queue is full, so that a connect to it hangs: Linux drops
    the SYN of a listener that has no room. Yields the port."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        for _ in range(16):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex((LOOPBACK, port))
            _, writable, _ = select.select([], [filler], [], 0.2)
            if not writable:
                break  # this connect hangs: the queue is full
        else:
            raise AssertionError("the accept queue never filled")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything until the end of stream; a reset counts as an end."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""
