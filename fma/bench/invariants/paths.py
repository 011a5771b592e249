"""Truthful actuation paths: each actuation is classified by what really happened.

:class:`ActuationPathTruthful` follows each requester from its (latest) binding to its first
ready relay (the ``actuation`` record) and checks the path against the trace:

- ``hot`` — the bound instance was woken (``instance_waking``) and not started afresh;
- ``warm`` — an instance was started in a launcher that existed before the binding;
- ``cold_launcher`` — the launcher was created bound to the requester;
- ``cold`` — a direct provider was created bound to the requester and its engine started.
"""

from dataclasses import dataclass

from fma.bench.invariants.replay import Checker, Event, World


@dataclass(slots=True)
class _Binding:
    provider: str
    kind: str
    path: str | None
    made_for_it: bool
    woken: bool = False
    started: bool = False


class ActuationPathTruthful(Checker):
    name = "actuation_path_truthful"

    def __init__(self) -> None:
        super().__init__()
        self._bindings: dict[str, _Binding] = {}

    def after(self, e: Event, world: World) -> None:
        kind = e["kind"]
        if kind == "bind":
            provider = world.providers.get(e["provider"])
            if provider is not None:
                self._bindings[e["requester"]] = _Binding(
                    provider.name, provider.kind, e.get("path"), provider.bound_at_creation
                )
        elif kind == "path_changed":
            provider = world.providers.get(e["provider"])
            binding = self._bindings.get(provider.bound_to or "") if provider else None
            if binding is not None:
                binding.path = e.get("path")
        elif kind in ("instance_waking", "instance_starting"):
            provider = world.providers.get(e["provider"])
            if provider is None or provider.bound_instance != e["instance"]:
                return
            binding = self._bindings.get(provider.bound_to or "")
            if binding is not None and binding.provider == provider.name:
                if kind == "instance_waking":
                    binding.woken = True
                else:
                    binding.started = True
        elif kind == "actuation":
            self._judge(e)
        elif kind == "requester_deleted":
            self._bindings.pop(e["requester"], None)

    def _judge(self, e: Event) -> None:
        path = e.get("path")
        binding = self._bindings.get(e["requester"])
        if binding is None:
            self.breach(
                e["t"], requester=e["requester"], path=path, why="actuation without binding"
            )
            return
        truth = _what_happened(binding)
        if path != truth or binding.path != path:
            self.breach(
                e["t"],
                requester=e["requester"],
                provider=binding.provider,
                path=path,
                bound_as=binding.path,
                happened=truth,
            )


def _what_happened(b: _Binding) -> str:
    if b.kind == "direct":
        if b.made_for_it:
            return "cold" if b.started else "cold (never started)"
        return "hot" if b.woken and not b.started else "unclear"
    if b.made_for_it:
        return "cold_launcher"
    if b.started:
        return "warm"
    return "hot" if b.woken else "unclear"
