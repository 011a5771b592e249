"""Which Pod updates the admission policies allow: the rules, as a pure function.

Two ValidatingAdmissionPolicies protect FMA's records from everyone but its controllers:

- ``fma-immutable-fields`` (every Pod): the binding and bookkeeping annotations, the
  controller's memory and the ``dual`` / ``launcher-config-name`` labels may not change;
- ``fma-bound-serverreqpod`` (a requester that was bound to a launcher): its
  ``inference-server-config`` annotation and ``dual`` label may not change.

FMA's controllers — ServiceAccounts named ``<anything>-fma-controllers`` — are exempt. The
same rules are rendered as CEL by :mod:`fma.api.policygen` (what the cluster enforces); this
function is what unit tests and the simulator check, and the integration tests hold the
two together.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fma.api.constants import (
    ANN_INFERENCE_SERVER_CONFIG,
    CONTROLLER_USER_PATTERN,
    LABEL_DUAL,
    PROTECTED_ANNOTATIONS,
    PROTECTED_LABELS,
)

_CONTROLLER_USER = re.compile(CONTROLLER_USER_PATTERN)


@dataclass(frozen=True, slots=True)
class PodMeta:
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


def is_controller(username: str) -> bool:
    return _CONTROLLER_USER.match(username) is not None


def update_denial(old: PodMeta, new: PodMeta, username: str) -> str | None:
    """Why updating a Pod from ``old`` to ``new`` by ``username`` is denied; None if allowed."""
    if is_controller(username):
        return None
    for key in PROTECTED_ANNOTATIONS:
        if old.annotations.get(key) != new.annotations.get(key):
            return f"annotation {key} may be changed only by the FMA controllers"
    for key in PROTECTED_LABELS:
        if old.labels.get(key) != new.labels.get(key):
            return f"label {key} may be changed only by the FMA controllers"
    isc = old.annotations.get(ANN_INFERENCE_SERVER_CONFIG)
    if (
        isc
        and old.labels.get(LABEL_DUAL)
        and isc != new.annotations.get(ANN_INFERENCE_SERVER_CONFIG)
    ):
        return f"annotation {ANN_INFERENCE_SERVER_CONFIG} of a bound requester may not change"
    return None
