"""Which GPUs this requester holds: the UUIDs its SPI reports to the controller.

Sources, in order: a mock given on the command line (tests, clusters with fake GPUs), NVML
(inside a GPU container it sees exactly the GPUs the kubelet assigned), and finally the
``NVIDIA_VISIBLE_DEVICES`` variable when it lists UUIDs (the device plugin sets it so).
``all``, ``none``, ``void``, unset, or a list of indices give no UUIDs: without NVML they
cannot be named.
"""

from collections.abc import Callable, Mapping

from fma.api.constants import ENV_NVIDIA_VISIBLE_DEVICES
from fma.gpu.discovery import GPU_COUNT_MAX, UUID_RE, from_visible_devices, naive_map, nvml_map


def parse_mock(spec: str) -> list[str]:
    """``N`` gives ``GPU-0..GPU-(N-1)`` (the launcher's mock map); otherwise a comma-separated
    list of UUIDs. Raises ``ValueError``."""
    text = spec.strip()
    if text.isdigit():
        return list(naive_map(int(text)))
    uuids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [uuid for uuid in uuids if not UUID_RE.fullmatch(uuid)]
    if bad:
        raise ValueError(f"not GPU UUIDs: {', '.join(bad[:5])} (give a count or GPU-/MIG- ids)")
    if len(uuids) > GPU_COUNT_MAX or len(set(uuids)) != len(uuids):
        raise ValueError(f"give at most {GPU_COUNT_MAX} distinct GPU UUIDs")
    return uuids


def discover(
    *,
    mock: str | None,
    environ: Mapping[str, str],
    query_nvml: Callable[[], dict[str, int] | None] = nvml_map,
) -> list[str]:
    """This requester's GPU UUIDs, from the first source that has them."""
    if mock is not None:
        return parse_mock(mock)
    found = query_nvml()
    if found is not None:
        return sorted(found, key=lambda uuid: found[uuid])
    return from_visible_devices(environ.get(ENV_NVIDIA_VISIBLE_DEVICES))
