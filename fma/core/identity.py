"""Instance identity: the key that makes a hot hit possible.

Two requests for the same server spec on the same GPUs get the same instance ID, so a sleeping
instance can be found and woken instead of started again. Unlike upstream, routing labels and
annotations are *not* part of the identity: relabelling a model must not make every sleeper
obsolete.
"""

import base64
import hashlib
import json
from functools import lru_cache

from fma.core.model import ServerSpec


def spec_digest(spec: ServerSpec) -> str:
    """Canonical JSON of the fields that change what the engine runs (not weights or timing)."""
    return json.dumps(
        {
            "model": spec.model,
            "port": spec.port,
            "options": list(spec.options),
            "env": sorted(spec.env),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


@lru_cache(maxsize=65_536)
def instance_id(spec: ServerSpec, gpu_uuids: tuple[str, ...]) -> str:
    """``"I" + base64url(sha256(spec ; gpus)) + "i"``: stable, and a valid label value.

    Pure; equal inputs give equal IDs. GPU order does not matter. Memoised (bounded): the
    controller asks for the same few IDs on every pass, and hashing is its largest cost.
    """
    digest = hashlib.sha256(
        (spec_digest(spec) + ";gpus=" + ",".join(sorted(gpu_uuids))).encode()
    ).digest()
    return "I" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "i"
