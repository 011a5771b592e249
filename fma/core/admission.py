"""Which Pod updates the admission policies allow: the rules, as a pure function.

Two ValidatingAdmissionPolicies protect FMA's records from everyone but its controllers:

- ``fma-immutable-fields`` (every Pod): the binding and bookkeeping annotations and the
  ``dual`` / ``launcher-config-name`` labels may not change;
- ``fma-bound-serverreqpod`` (a requester that was bound to a launcher): its
  ``inference-server-config`` annotation and ``dual`` label may not change.

FMA's controllers — ServiceAccounts named ``<anything>-fma-controllers`` — are exempt. The
chart renders the same rules as CEL; this function is what tests and the simulator check.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fma.api.constants import (
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_INSTANCE_ID,
    ANN_ISC_ROUTING_METADATA,
    ANN_REQUESTER,
    ANN_SERVER_PORT,
    ANN_STATUS,
    ANN_VLLM_CONFIG,
    LABEL_DUAL,
    LABEL_LAUNCHER_CONFIG_NAME,
)

PROTECTED_ANNOTATIONS = (
    ANN_REQUESTER,
    ANN_STATUS,
    ANN_INSTANCE_ID,
    ANN_SERVER_PORT,
    ANN_VLLM_CONFIG,
    ANN_ISC_ROUTING_METADATA,
)
PROTECTED_LABELS = (LABEL_DUAL, LABEL_LAUNCHER_CONFIG_NAME)
_CONTROLLER_USER = re.compile(r"^system:serviceaccount:[^:]+:[^:]+-fma-controllers$")


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
