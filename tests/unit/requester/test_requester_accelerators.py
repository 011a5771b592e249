"""Which GPUs a requester reports, from a mock, NVML or NVIDIA_VISIBLE_DEVICES."""

import pytest

from fma.requester.accelerators import discover, from_visible_devices, parse_mock
from fma.requester.server import options_from_env


def test_a_count_mocks_the_launchers_naive_gpus() -> None:
    assert parse_mock("3") == ["GPU-0", "GPU-1", "GPU-2"]
    assert parse_mock("0") == []


def test_a_list_mocks_exactly_those_uuids() -> None:
    assert parse_mock("GPU-1f2e, MIG-3a") == ["GPU-1f2e", "MIG-3a"]


@pytest.mark.parametrize("spec", ["GPU-a,GPU-a", "gpu0", "GPU-a b", "-1"])
def test_a_bad_mock_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_mock(spec)


@pytest.mark.parametrize(
    ("value", "uuids"),
    [
        (None, []),
        ("all", []),
        ("none", []),
        ("void", []),
        ("0,1", []),
        ("GPU-aa,GPU-bb", ["GPU-aa", "GPU-bb"]),
    ],
)
def test_visible_devices_give_uuids_only_when_they_list_uuids(
    value: str | None, uuids: list[str]
) -> None:
    assert from_visible_devices(value) == uuids


def test_the_mock_wins_then_nvml_then_the_environment() -> None:
    environ = {"NVIDIA_VISIBLE_DEVICES": "GPU-env"}

    def nvml() -> dict[str, int]:
        return {"GPU-second": 1, "GPU-first": 0}

    assert discover(mock="1", environ=environ, query_nvml=nvml) == ["GPU-0"]
    assert discover(mock=None, environ=environ, query_nvml=nvml) == ["GPU-first", "GPU-second"]
    assert discover(mock=None, environ=environ, query_nvml=lambda: None) == ["GPU-env"]


def test_ports_come_from_the_environment() -> None:
    default = options_from_env(host="127.0.0.1", mock_gpus="1", environ={})
    assert (default.probes_port, default.spi_port, default.accelerators) == (8080, 8081, ("GPU-0",))
    custom = options_from_env(
        host="127.0.0.1", mock_gpus="0", environ={"PROBES_PORT": "9080", "SPI_PORT": "9081"}
    )
    assert (custom.probes_port, custom.spi_port) == (9080, 9081)


@pytest.mark.parametrize(
    "environ",
    [{"PROBES_PORT": "http"}, {"SPI_PORT": "0"}, {"PROBES_PORT": "9000", "SPI_PORT": "9000"}],
)
def test_bad_ports_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        options_from_env(host="127.0.0.1", mock_gpus="0", environ=environ)
