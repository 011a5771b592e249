"""The requester's TCP proxy over real loopback sockets: HTTP through it (keep-alive, a large
body, a streamed response), half-close, dial failures, early closes, the connection bound and
a shutdown that leaves nothing running."""

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from fma.requester.proxy import TcpProxy
from tests.unit.requester.proxy_peers import (
    LOOPBACK,
    Firehose,
    HttpUpstream,
    TcpUpstream,
    echo_after_eof,
    free_port,
    http_upstream,
    read_until_closed,
    unanswering_listener,
)

STEP_TIMEOUT_S = 10.0
pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def proxy_to(
    port: int, *, dial_timeout_s: float = 5.0, connections_max: int = 16
) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(
        upstream_host=LOOPBACK,
        upstream_port=port,
        dial_timeout_s=dial_timeout_s,
        connections_max=connections_max,
    )
    await proxy.start(LOOPBACK, 0)
    try:
        yield proxy
    finally:
        await proxy.close()


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


def test_http_keep_alive_a_large_body_and_a_streamed_response_pass_untouched() -> None:
    async def scenario() -> None:
        upstream = HttpUpstream()
        async with (
            http_upstream(upstream) as upstream_port,
            proxy_to(upstream_port) as proxy,
            httpx.AsyncClient(
                base_url=f"http://{LOOPBACK}:{proxy.listen_port}", timeout=STEP_TIMEOUT_S
            ) as client,
        ):
            peers = {tuple((await client.get("/peer")).json()["peer"]) for _ in range(3)}
            assert len(peers) == 1, "keep-alive: three requests, one upstream connection"
            assert proxy.connection_count == 1

            body = os.urandom(8 * 1024 * 1024)
            digest = (await client.post("/digest", content=body)).json()
            assert digest == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}

            async with client.stream("GET", "/stream") as response:
                lines = response.aiter_lines()
                first = await asyncio.wait_for(anext(lines), STEP_TIMEOUT_S)
                assert first == "first", "the first chunk arrives before the response ends"
                upstream.release.set()
                assert [line async for line in lines] == ["chunk 0", "chunk 1", "chunk 2"]
            assert proxy.connection_count == 1  # still the same connection
        assert proxy.connection_count == 0

    asyncio.run(scenario())


def test_a_half_close_is_passed_on_and_the_other_direction_keeps_flowing() -> None:
    async def scenario() -> None:
        async with TcpUpstream(echo_after_eof) as upstream, proxy_to(upstream.port) as proxy:
            reader, writer = await asyncio.open_connection(LOOPBACK, proxy.listen_port)
            payload = os.urandom(1024 * 1024)
            writer.write(payload)
            await writer.drain()
            writer.write_eof()  # we are done sending; the echo comes only after this
            echoed = await asyncio.wait_for(reader.read(), STEP_TIMEOUT_S)
            assert echoed == payload
            writer.close()
            await writer.wait_closed()
            await eventually(lambda: proxy.connection_count == 0, "the relay ends")

    asyncio.run(scenario())


def test_a_dial_that_times_out_closes_the_client_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(port: int) -> float:
        async with proxy_to(port, dial_timeout_s=0.3) as proxy:
            reader, writer = await asyncio.open_connection(LOOPBACK, proxy.listen_port)
            started_s = time.monotonic()
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await asyncio.wait_for(read_until_closed(reader), STEP_TIMEOUT_S) == b""
            writer.close()
            return time.monotonic() - started_s

    caplog.set_level(logging.WARNING, logger="fma.requester.proxy")
    with unanswering_listener() as port:
        elapsed_s = asyncio.run(scenario(port))
    assert 0.25 <= elapsed_s < 5.0
    assert "timed out after 0.3 s" in caplog.text


def test_a_refused_dial_closes_the_client_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with proxy_to(free_port()) as proxy:
            reader, writer = await asyncio.open_connection(LOOPBACK, proxy.listen_port)
            assert await asyncio.wait_for(read_until_closed(reader), STEP_TIMEOUT_S) == b""
            writer.close()
            await eventually(lambda: proxy.connection_count == 0, "the relay ends")

    caplog.set_level(logging.WARNING, logger="fma.requester.proxy")
    asyncio.run(scenario())
    assert "cannot dial" in caplog.text


def test_a_client_that_closes_early_ends_the_upstream_connection() -> None:
    async def scenario() -> None:
        firehose = Firehose()
        async with TcpUpstream(firehose) as upstream, proxy_to(upstream.port) as proxy:
            reader, writer = await asyncio.open_connection(LOOPBACK, proxy.listen_port)
            assert len(await reader.readexactly(100_000)) == 100_000
            writer.transport.abort()
            await asyncio.wait_for(firehose.cut.wait(), STEP_TIMEOUT_S)
            await eventually(lambda: proxy.connection_count == 0, "the relay ends")

    asyncio.run(scenario())


def test_connections_beyond_the_bound_are_closed_at_once() -> None:
    async def scenario() -> None:
        async with (
            TcpUpstream(echo_after_eof) as upstream,
            proxy_to(upstream.port, connections_max=1) as proxy,
        ):
            first_reader, first_writer = await asyncio.open_connection(LOOPBACK, proxy.listen_port)
            await eventually(lambda: proxy.connection_count == 1, "the first is relayed")
            second_reader, second_writer = await asyncio.open_connection(
                LOOPBACK, proxy.listen_port
            )
            assert await asyncio.wait_for(read_until_closed(second_reader), STEP_TIMEOUT_S) == b""
            second_writer.close()
            first_writer.write(b"still here")
            first_writer.write_eof()
            assert await asyncio.wait_for(first_reader.read(), STEP_TIMEOUT_S) == b"still here"
            first_writer.close()

    asyncio.run(scenario())


def test_close_cuts_every_connection_and_leaves_no_task_behind() -> None:
    async def scenario() -> None:
        firehose = Firehose()
        async with TcpUpstream(firehose) as busy, TcpUpstream(echo_after_eof) as idle:
            busy_proxy = TcpProxy(upstream_host=LOOPBACK, upstream_port=busy.port, dial_timeout_s=5)
            idle_proxy = TcpProxy(upstream_host=LOOPBACK, upstream_port=idle.port, dial_timeout_s=5)
            await busy_proxy.start(LOOPBACK, 0)
            await idle_proxy.start(LOOPBACK, 0)
            clients = [
                await asyncio.open_connection(LOOPBACK, busy_proxy.listen_port),
                await asyncio.open_connection(LOOPBACK, idle_proxy.listen_port),
                await asyncio.open_connection(LOOPBACK, idle_proxy.listen_port),
            ]
            await clients[0][0].readexactly(65536)  # the busy one is mid-transfer
            await eventually(
                lambda: (busy_proxy.connection_count, idle_proxy.connection_count) == (1, 2),
                "every connection is relayed",
            )
            busy_port = busy_proxy.listen_port
            await busy_proxy.close()
            await idle_proxy.close()
            assert (busy_proxy.connection_count, idle_proxy.connection_count) == (0, 0)
            for reader, writer in clients:
                with contextlib.suppress(ConnectionResetError):
                    await asyncio.wait_for(reader.read(), STEP_TIMEOUT_S)  # ends, not hangs
                writer.close()
            await asyncio.wait_for(firehose.cut.wait(), STEP_TIMEOUT_S)
            with pytest.raises(OSError):
                await asyncio.open_connection(LOOPBACK, busy_port)
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(scenario())
