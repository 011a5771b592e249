"""Which GPUs a requester reports, from a mock, NVML or NVIDIA_VISIBLE_DEVICES."""

import pytest

from fma.gpu.discovery import from_visible_devices
from fma.requester.accelerators import discover, parse_mock


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
