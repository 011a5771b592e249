"""A plain TCP proxy: each accepted connection is relayed over one new upstream connection.

The requester's proxy lets clients that know only the requester (a Service, an
InferencePool) reach the bound server-providing Pod's engine. It carries bytes, not HTTP, so
HTTP/1.1 keep-alive, streamed responses, HTTP/2, gRPC and TLS pass untouched.

Per connection:

- the upstream is dialled once, within the dial timeout (name resolution included); when that
  times out or is refused, the client's connection is closed and the reason logged;
- bytes flow both ways until both directions have ended. An end of stream from one side is
  passed on as a half-close (``shutdown(SHUT_WR)``) and the other direction keeps flowing,
  as TCP allows; a reset or write error on either side aborts both connections, so neither
  peer takes a broken stream for a complete one;
- writes wait for the peer to drain (``StreamWriter.drain``), so a slow reader holds the
  proxy to a bounded buffer instead of filling memory.

At most ``connections_max`` connections are relayed at once; one more is closed at once and
logged. :meth:`TcpProxy.close` stops listening, aborts every relayed connection and returns
once their tasks have ended: nothing outlives it.
"""

import asyncio
import contextlib
import logging
from typing import Final

_LOG = logging.getLogger(__name__)
CONNECTIONS_MAX_DEFAULT: Final = 1024
CHUNK_BYTES: Final = 64 * 1024
"""The most bytes read per step; with the transports' own write buffers (64 KiB high-water
mark) this bounds what one connection holds in memory."""


class TcpProxy:
    """Forwards connections to ``upstream_host:upstream_port``; see the module doc."""

    def __init__(
        self,
        *,
        upstream_host: str,
        upstream_port: int,
        dial_timeout_s: float,
        connections_max: int = CONNECTIONS_MAX_DEFAULT,
    ) -> None:
        self._upstream_host = upstream_host
        self._upstream_port = upstream_port
        self._dial_timeout_s = dial_timeout_s
        self._connections_max = connections_max
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def upstream(self) -> str:
        """``host:port`` of the upstream, for logs."""
        return _host_port(self._upstream_host, self._upstream_port)

    @property
    def connection_count(self) -> int:
        """Connections being relayed now."""
        return len(self._relays)

    @property
    def listen_port(self) -> int:
        """The port listened on (the one chosen by the OS when started with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the proxy is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``; returns once the socket listens. Raises ``OSError`` (the
        port is taken, the address is not this host's) or ``RuntimeError`` if started twice."""
        if self._server is not None or self._closing:
            raise RuntimeError("a proxy is started once")
        self._server = await asyncio.start_server(self._serve_client, host, port)

    async def close(self) -> None:
        """Stop listening, abort every relayed connection and wait until their tasks end."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        # A connection accepted just before the close may have its task scheduled but not
        # yet started; one turn of the loop lets it start, see ``_closing`` and end.
        await asyncio.sleep(0)
        while self._relays:
            relays = list(self._relays)
            for relay in relays:
                relay.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve_client(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        client = _peer(client_writer)
        if self._closing:
            client_writer.transport.abort()
            return
        if len(self._relays) >= self._connections_max:
            _LOG.warning(
                "proxy: %d connections already; closing the one from %s",
                self._connections_max,
                client,
            )
            client_writer.transport.abort()
            return
        relay = asyncio.current_task()
        assert relay is not None  # a connection callback always runs in a task
        self._relays.add(relay)
        try:
            await self._relay(client, client_reader, client_writer)
        finally:
            self._relays.discard(relay)

    async def _relay(
        self,
        client: str,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self._upstream_host, self._upstream_port),
                self._dial_timeout_s,
            )
        except TimeoutError:
            _LOG.warning(
                "proxy: dialling %s timed out after %g s; closing the connection from %s",
                self.upstream,
                self._dial_timeout_s,
                client,
            )
            await _close(client_writer)
            return
        except OSError as error:
            _LOG.warning(
                "proxy: cannot dial %s (%s); closing the connection from %s",
                self.upstream,
                error,
                client,
            )
            await _close(client_writer)
            return
        clean = False
        try:
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(_pipe(client_reader, upstream_writer))
                pipes.create_task(_pipe(upstream_reader, client_writer))
            clean = True
        except* OSError as broken:  # a reset, a broken pipe: the stream is cut
            _LOG.debug("proxy: connection from %s cut: %s", client, broken.exceptions[0])
        finally:
            if clean:
                await _close(client_writer)
                await _close(upstream_writer)
            else:  # cut, or the proxy closes: a reset, never an end that looks complete
                client_writer.transport.abort()
                upstream_writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the reader's end of stream, then half-close the writer."""
    while data := await reader.read(CHUNK_BYTES):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        with contextlib.suppress(OSError):  # the peer may be gone already; nothing to tell
            writer.write_eof()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return _host_port(str(peer[0]), int(peer[1]))
    return str(peer)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
