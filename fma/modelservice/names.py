"""Names and labels of a ModelService's children, as upstream spells them.

Every name is ``<ModelService name>-<suffix>`` made a valid label value: lower case, runs of
characters outside ``[a-z0-9-]`` turned into ``-``, no leading or trailing ``-._``, at most 63
characters. Where upstream falls back to a fixed name shared by every ModelService
(``deployment-decode``) when the result is too long, the base part is shortened instead and
the suffix kept, so names stay distinct.
"""

import re
from dataclasses import dataclass
from typing import Final

from fma.api.constants import (
    COMPONENT_FMA_REQUESTER,
    LABEL_MS_COMPONENT,
    LABEL_MS_EPP,
    LABEL_MS_INFERENCE_SERVING,
    LABEL_MS_MODEL,
    LABEL_MS_ROLE,
)

MAX_NAME: Final = 63
PREFILL: Final = "prefill"
DECODE: Final = "decode"
ROLE_DECODE_REQUESTER: Final = "decode-requester"
_DISALLOWED: Final = re.compile(r"[^a-z0-9-]+")
_EDGES: Final = "-._"


def sanitize(text: str, *, suffix: str = "") -> str:
    """``text`` + ``suffix`` as a valid label value of at most 63 characters.

    The suffix (already valid) is kept whole; the sanitised ``text`` is cut to make room.
    """
    base = _DISALLOWED.sub("-", text.strip().lower()).strip(_EDGES)
    room = MAX_NAME - len(suffix)
    return (base[:room].strip(_EDGES) + suffix).strip(_EDGES)


@dataclass(frozen=True)
class ChildNames:
    """The names of every object a ModelService may own."""

    owner: str

    def _name(self, suffix: str) -> str:
        return sanitize(self.owner, suffix=suffix)

    def deployment(self, role: str) -> str:
        return self._name(f"-{role}")

    def service(self, role: str) -> str:
        return self._name(f"-service-{role}")

    @property
    def pd_service_account(self) -> str:
        return self._name("-sa")

    @property
    def epp_deployment(self) -> str:
        return self._name("-epp")

    @property
    def epp_service(self) -> str:
        return self._name("-epp-service")

    @property
    def epp_service_account(self) -> str:
        return self._name("-epp-sa")

    @property
    def epp_role_binding(self) -> str:
        return self._name("-epp-rolebinding")

    @property
    def inference_pool(self) -> str:
        return self._name("-inference-pool")

    @property
    def inference_model(self) -> str:
        """Upstream uses the ModelService name unsanitised; here it is sanitised like the rest."""
        return self._name("")

    @property
    def http_route(self) -> str:
        return self._name("-http-route")

    @property
    def requester_deployment(self) -> str:
        return self._name(f"-{ROLE_DECODE_REQUESTER}")

    @property
    def inference_server_config(self) -> str:
        return self._name(f"-{DECODE}")

    @property
    def launcher_config(self) -> str:
        return self._name("-launcher")

    @property
    def launcher_population_policy(self) -> str:
        return self._name("-launcher")


def model_label(model_name: str) -> str:
    """The ``llm-d.ai/model`` label value for a routing model name."""
    return sanitize(model_name)


def common_labels(model_name: str) -> dict[str, str]:
    """Labels of everything that serves the model (the InferencePool selects these)."""
    return {LABEL_MS_INFERENCE_SERVING: "true", LABEL_MS_MODEL: model_label(model_name)}


def pod_labels(model_name: str, role: str) -> dict[str, str]:
    """Labels of prefill or decode Pods: the common labels plus the role."""
    return {**common_labels(model_name), LABEL_MS_ROLE: role}


def epp_labels(names: ChildNames) -> dict[str, str]:
    return {LABEL_MS_EPP: names.epp_deployment}


def requester_labels(model_name: str) -> dict[str, str]:
    """Labels of FMA requester Pods; deliberately not the serving labels, so that routing
    selects the launchers that serve rather than the requesters that hold the GPUs."""
    return {
        LABEL_MS_COMPONENT: COMPONENT_FMA_REQUESTER,
        LABEL_MS_MODEL: model_label(model_name),
        LABEL_MS_ROLE: ROLE_DECODE_REQUESTER,
    }
