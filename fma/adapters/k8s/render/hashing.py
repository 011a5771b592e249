"""Canonical JSON and the SHA-256 digests FMA writes into annotations.

A digest is taken over *canonical* JSON (sorted keys, no insignificant whitespace, UTF-8), so
two equal objects hash alike whatever order their maps were built or read in.
"""

import base64
import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, compact separators, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_base64(*parts: str) -> str:
    """Unpadded standard base64 of SHA-256 over the UTF-8 of ``parts``, concatenated."""
    return base64.b64encode(_digest(parts)).decode().rstrip("=")


def sha256_base64url(*parts: str) -> str:
    """Unpadded base64url of SHA-256 over the UTF-8 of ``parts``, concatenated."""
    return base64.urlsafe_b64encode(_digest(parts)).decode().rstrip("=")


def _digest(parts: tuple[str, ...]) -> bytes:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode())
    return hasher.digest()
