"""Sub-seeds: every random choice of a run derives from its one seed, by component name.

Each component owns its own :class:`random.Random`, seeded from ``(seed, name)`` through SHA-256,
so adding a component or a fault never shifts another component's stream, and nothing depends
on Python's per-process hash randomisation or on global random state.
"""

import hashlib
import random


def sub_seed(seed: int, name: str) -> int:
    """A 64-bit seed for the component ``name`` of the run seeded with ``seed``. Pure."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def sub_rng(seed: int, name: str) -> random.Random:
    """The component's own generator; equal (seed, name) give equal streams."""
    return random.Random(sub_seed(seed, name))
