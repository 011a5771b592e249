"""The requester's probes and SPI: readiness relay and the accelerator list."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fma.api.constants import SPI_ACCELERATORS_PATH, SPI_BECOME_READY_PATH, SPI_BECOME_UNREADY_PATH
from fma.requester.app import Readiness, create_probes_app, create_spi_app
from fma.requester.proxy_config import ProxyConfigurator


def unused_proxy() -> ProxyConfigurator:
    return ProxyConfigurator(listen_host="127.0.0.1", listen_port=1, dial_timeout_s=1.0)


@pytest.fixture
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    readiness = Readiness()
    with (
        TestClient(create_probes_app(readiness)) as probes,
        TestClient(create_spi_app(readiness, ["GPU-a", "GPU-b"], unused_proxy())) as spi,
    ):
        yield probes, spi


def test_health_is_always_ok(clients: tuple[TestClient, TestClient]) -> None:
    probes, _ = clients
    assert probes.get("/health").json() == {"status": "OK"}


def test_ready_follows_the_relayed_readiness(clients: tuple[TestClient, TestClient]) -> None:
    probes, spi = clients
    assert probes.get("/ready").status_code == 503
    assert spi.post(SPI_BECOME_READY_PATH).json() == {"ready": True}
    assert probes.get("/ready").status_code == 200
    assert spi.post(SPI_BECOME_READY_PATH).status_code == 200  # idempotent
    assert spi.post(SPI_BECOME_UNREADY_PATH).json() == {"ready": False}
    assert probes.get("/ready").status_code == 503


def test_the_spi_lists_the_accelerators(clients: tuple[TestClient, TestClient]) -> None:
    _, spi = clients
    response = spi.get(SPI_ACCELERATORS_PATH)
    assert response.status_code == 200
    assert response.json() == ["GPU-a", "GPU-b"]


def test_the_relay_endpoints_accept_only_post(clients: tuple[TestClient, TestClient]) -> None:
    _, spi = clients
    assert spi.get(SPI_BECOME_READY_PATH).status_code == 405


def test_an_oversized_relay_body_is_refused(clients: tuple[TestClient, TestClient]) -> None:
    _, spi = clients
    response = spi.post(SPI_BECOME_READY_PATH, content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert response.json() == {"detail": "request body larger than 65536 bytes"}
