"""What a provider Pod records when it is created already bound to a requester."""

from dataclasses import dataclass

from fma.core.model import ActuationPath


@dataclass(frozen=True, slots=True)
class Binding:
    """A requester's binding, as written onto its provider Pod.

    ``bound_at`` is RFC 3339 with fractional seconds (``2026-01-02T03:04:05.678901Z``), given
    by the caller: rendering reads no clock. ``instance_id`` is the instance that serves the
    requester (for the direct path, the provider's one instance).
    """

    requester_uid: str
    requester_name: str
    instance_id: str
    path: ActuationPath
    bound_at: str

    @property
    def requester_annotation(self) -> str:
        """The value of ``dual-pods.llm-d.ai/requester``: ``"<uid> <name>"``."""
        return f"{self.requester_uid} {self.requester_name}"
