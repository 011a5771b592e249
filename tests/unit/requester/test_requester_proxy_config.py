"""``/v1/proxy/config`` on the SPI: 404 before, 200 once the proxy listens, 200 for the same
target again, 409 for another, 500 for good when the listener cannot start, 405 for other
methods, 400 for a body that is not JSON and 422 naming the field at fault."""

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest

from fma.api.constants import SPI_PROXY_CONFIG_PATH
from fma.requester.app import Readiness, create_spi_app
from fma.requester.proxy_config import ProxyConfigurator, TargetInvalid, parse_target
from tests.unit.requester.proxy_peers import LOOPBACK, free_port

pytestmark = pytest.mark.timeout(60)
Scenario = Callable[[httpx.AsyncClient, ProxyConfigurator], Awaitable[None]]


def run_spi(scenario: Scenario, *, proxy_port: int | None = None) -> None:
    """Run ``scenario`` against an SPI app in this loop, its proxy on a real loopback port."""

    async def main() -> None:
        proxy = ProxyConfigurator(
            listen_host=LOOPBACK, listen_port=proxy_port or free_port(), dial_timeout_s=1.0
        )
        app = create_spi_app(Readiness(), [], proxy)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://spi") as client:
                await scenario(client, proxy)
        finally:
            await proxy.close()

    asyncio.run(main())


def test_get_is_404_until_a_put_and_then_reports_the_target() -> None:
    async def scenario(spi: httpx.AsyncClient, proxy: ProxyConfigurator) -> None:
        before = await spi.get(SPI_PROXY_CONFIG_PATH)
        assert before.status_code == 404
        assert "not configured" in before.json()["detail"]

        target = {"address": LOOPBACK, "port": free_port()}
        put = await spi.put(SPI_PROXY_CONFIG_PATH, json=target)
        assert (put.status_code, put.json()) == (200, target)
        assert proxy.proxy is not None
        _, writer = await asyncio.open_connection(LOOPBACK, proxy.proxy.listen_port)
        writer.close()  # the 200 came once the proxy listened

        after = await spi.get(SPI_PROXY_CONFIG_PATH)
        assert (after.status_code, after.json()) == (200, target)

    run_spi(scenario)


def test_the_same_target_again_is_200_and_another_is_409() -> None:
    async def scenario(spi: httpx.AsyncClient, proxy: ProxyConfigurator) -> None:
        target = {"address": "fd00::7", "port": 8005}
        assert (await spi.put(SPI_PROXY_CONFIG_PATH, json=target)).status_code == 200
        same = {"address": "fd00:0:0::0007", "port": 8005}  # the same address, written longer
        again = await spi.put(SPI_PROXY_CONFIG_PATH, json=same)
        assert (again.status_code, again.json()) == (200, target)
        other = await spi.put(SPI_PROXY_CONFIG_PATH, json={"address": "fd00::7", "port": 8006})
        assert other.status_code == 409
        assert "[fd00::7]:8005" in other.json()["detail"]
        assert (await spi.get(SPI_PROXY_CONFIG_PATH)).json() == target

    run_spi(scenario)


def test_concurrent_puts_start_one_listener() -> None:
    async def scenario(spi: httpx.AsyncClient, proxy: ProxyConfigurator) -> None:
        replies = await asyncio.gather(
            *(
                spi.put(SPI_PROXY_CONFIG_PATH, json={"address": "10.0.0.7", "port": port})
                for port in (8005, 8005, 8006)
            )
        )
        codes = sorted(reply.status_code for reply in replies)
        assert codes in ([200, 200, 409], [200, 409, 409])
        assert (await spi.get(SPI_PROXY_CONFIG_PATH)).status_code == 200

    run_spi(scenario)


def test_a_listener_that_cannot_start_fails_that_put_and_every_later_one() -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port: int = taken.getsockname()[1]

        async def scenario(spi: httpx.AsyncClient, proxy: ProxyConfigurator) -> None:
            target = {"address": "10.0.0.7", "port": 8005}
            first = await spi.put(SPI_PROXY_CONFIG_PATH, json=target)
            assert first.status_code == 500
            assert f"cannot listen on {LOOPBACK}:{port}" in first.json()["detail"]
            for body in (target, {"address": "10.0.0.8", "port": 8005}):
                later = await spi.put(SPI_PROXY_CONFIG_PATH, json=body)
                assert (later.status_code, later.json()) == (500, first.json())
            assert (await spi.get(SPI_PROXY_CONFIG_PATH)).status_code == 500

        run_spi(scenario, proxy_port=port)


@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH"])
def test_other_methods_are_405(method: str) -> None:
    async def scenario(spi: httpx.AsyncClient, proxy: ProxyConfigurator) -> None:
        assert (await spi.request(method, SPI_PROXY_CONFIG_PATH)).status_code == 405

    run_spi(scenario)


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        (b"", 400, "not JSON"),
        (b"{address: 1}", 400, "not JSON"),
        (b"[1, 2]", 422, "body:"),
        (b'{"port": 8005}', 422, "address:"),
        (b'{"address": "10.0.0.7"}', 422, "port:"),
        (b'{"address": "10.0.0.7", "port": 0}', 422, "port:"),
        (b'{"address": "10.0.0.7", "port": 65536}', 422, "port:"),
        (b'{"address": "10.0.0.7", "port": "8005"}', 422, "port:"),
        (b'{"address": "10.0.0.7", "port": true}', 422, "port:"),
        (b'{"address": "10.0.0.7", "port": 8005.5}', 422, "port:"),
        (b'{"address": "", "port": 8005}', 422, "address:"),
        (b'{"address": "10.0.0", "port": 8005}', 422, "address:"),
        (b'{"address": "http://10.0.0.7", "port": 8005}', 422, "address:"),
        (b'{"address": "[::1]", "port": 8005}', 422, "address:"),
        (b'{"address": "a b", "port": 8005}', 422, "address:"),
        (b'{"address": 7, "port": 8005}', 422, "address:"),
        (b'{"address": "10.0.0.7", "port": 8005, "tls": true}', 422, "tls:"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(body: bytes, status: int, named: str) -> None:
    async def scenario(spi: httpx.AsyncClient, proxy: ProxyConfigurator) -> None:
        reply = await spi.put(SPI_PROXY_CONFIG_PATH, content=body)
        assert reply.status_code == status
        assert named in reply.json()["detail"]
        assert proxy.target is None and proxy.failure is None  # nothing was started

    run_spi(scenario)


def test_an_oversized_body_is_413() -> None:
    async def scenario(spi: httpx.AsyncClient, proxy: ProxyConfigurator) -> None:
        body = b'{"address": "' + b"a" * 70_000 + b'", "port": 1}'
        assert (await spi.put(SPI_PROXY_CONFIG_PATH, content=body)).status_code == 413

    run_spi(scenario)


@pytest.mark.parametrize(
    ("address", "canonical"),
    [
        ("10.0.0.7", "10.0.0.7"),
        ("::1", "::1"),
        ("FD00:0::7", "fd00::7"),
        ("provider-0.ns.svc.cluster.local.", "provider-0.ns.svc.cluster.local"),
        ("Provider", "provider"),
    ],
)
def test_addresses_are_ip_addresses_or_dns_names_kept_canonical(
    address: str, canonical: str
) -> None:
    target = parse_target(f'{{"address": "{address}", "port": 8005}}'.encode())
    assert (target.address, target.port) == (canonical, 8005)


def test_a_too_long_name_is_refused() -> None:
    with pytest.raises(TargetInvalid, match="address"):
        parse_target(b'{"address": "' + b"a." * 130 + b'b", "port": 8005}')
