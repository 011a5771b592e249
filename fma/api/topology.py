"""Node topologies a scenario's node pool may name, and the measured rates of their links.

A node pool's ``topology`` picks one of three boards; the simulator builds its graph
(:mod:`fma.adapters.sim.topology`) and routes every transfer over it:

- ``hgx``: an HGX-style 8-GPU board: two CPU sockets, the GPUs in pairs behind PCIe Gen5
  switches (a pair shares its switch's x16 uplink), half the switches on each socket, every
  GPU on an NVSwitch; the weights' disk on the first socket;
- ``pcie``: a PCIe-only box: the GPUs in fours behind PCIe Gen5 switches, no NVLink;
- ``gh200``: GH200-like superchips: each GPU tied to its own Grace CPU by NVLink-C2C, the
  superchips joined to one another; the disk on the first.

Rates are in GB/s (10^9 bytes per second) per direction. Each link class says what its
fastest copy measures (the *floor*: no wake may move weights faster) and what vLLM's sleep mode
achieves over it (the defaults of a pool's ``h2d_gbps`` and ``d2h_gbps``), with sources; the
sources are collected in ``docs/simulator.md``.
"""

from dataclasses import dataclass
from typing import Final, Literal

TopologyName = Literal["hgx", "pcie", "gh200"]


@dataclass(frozen=True, slots=True)
class LinkClass:
    """A host-device link and what copies achieve over it, in GB/s per direction."""

    name: str
    line_gbps: float
    """The link's line rate."""
    h2d_floor_gbps: float
    """The fastest measured host-to-device copy (copy engine, pinned memory): the floor."""
    d2h_floor_gbps: float
    vllm_h2d_gbps: float
    """What vLLM's wake achieves (the default wake rate)."""
    vllm_d2h_gbps: float
    """What vLLM's sleep achieves for the copy itself (the default sleep rate)."""


PCIE_GEN5: Final = LinkClass(
    "PCIe Gen5 x16",
    line_gbps=63.0,
    h2d_floor_gbps=55.4,  # nvbandwidth, H100 HBM3 8-GPU node: H2D CE 55.37 GB/s
    d2h_floor_gbps=55.2,  # same log: D2H CE 55.20 GB/s
    vllm_h2d_gbps=24.8,  # vLLM wake, Qwen3-32B on H100: 61.68 GiB in 2.67 s (llm-d GKE guide)
    vllm_d2h_gbps=28.5,  # vLLM sleep's D2H cudaMemcpy there: 26.5 GiB/s
)
NVLINK_C2C: Final = LinkClass(
    "NVLink-C2C",
    line_gbps=450.0,  # 900 GB/s bidirectional
    h2d_floor_gbps=346.0,  # nvbandwidth on GH200 (NVIDIA/nvbandwidth#23): H2D CE 346 GB/s
    d2h_floor_gbps=346.0,
    # No vLLM wake on GH200 is published: vLLM's share of the floor on Gen5 (45 %) is assumed.
    vllm_h2d_gbps=round(346.0 * 24.8 / 55.4, 1),
    vllm_d2h_gbps=round(346.0 * 28.5 / 55.2, 1),
)

LINKS: Final[dict[str, LinkClass]] = {"hgx": PCIE_GEN5, "pcie": PCIE_GEN5, "gh200": NVLINK_C2C}
"""The host-device link class of each topology."""

NVLINK4_GBPS: Final = 450.0
"""An H100's NVLink 4 to the NVSwitch, per direction (900 GB/s bidirectional)."""
SOCKET_LINK_GBPS: Final = 100.0
"""Between two CPU sockets (UPI), per direction: ours, and rarely on a transfer's path (pinned
buffers sit on the socket of their GPU)."""

GPUS_PER_SWITCH: Final[dict[str, int]] = {"hgx": 2, "pcie": 4}
"""GPUs behind one PCIe switch (sharing its uplink)."""
