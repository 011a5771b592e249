"""No requester is deleted by the controller without a cause the trace shows.

:class:`RequesterDeletedWithCause` looks at every ``requester_deleting`` the controller asked
for (``by: controller``) and checks its ``reason`` against the world at that moment: an
instance that stopped or is gone, a provider being deleted, a provider not Ready for the ready
timeout, a cordoned node.
Any other reason is a breach, and so is a true-sounding reason that the trace does not bear
out. The reasons are the controller's vocabulary, written out here again on purpose: a test
keeps the two lists equal.
"""

from collections.abc import Callable

from fma.bench.invariants.replay import Checker, Event, Prov, Req, World

_CAUSES: dict[str, Callable[[World, Req, Prov | None], bool]] = {
    "its instance stopped": lambda w, r, p: (
        (i := w.bound_instance(p)) is not None and i.state == "stopped"
    ),
    "its instance is gone": lambda w, r, p: p is not None and w.bound_instance(p) is None,
    "its provider is being deleted": lambda w, r, p: p is not None and p.deleting,
    "its provider stayed not ready": lambda w, r, p: (
        p is not None
        and p.not_ready_since_s is not None
        and w.now_s - p.not_ready_since_s >= float(w.limits.get("ready_timeout_s", 0.0)) - 1e-6
    ),
    "node is cordoned": lambda w, r, p: r.node in w.cordoned,
}
KNOWN_CAUSES = frozenset(_CAUSES)


class RequesterDeletedWithCause(Checker):
    name = "requester_deleted_with_cause"

    def before(self, e: Event, world: World) -> None:
        if e["kind"] != "requester_deleting" or e.get("by") != "controller":
            return
        requester = world.requesters.get(e["requester"])
        if requester is None or requester.deleting:
            return
        reason = e.get("reason", "")
        cause = _CAUSES.get(reason)
        if cause is None:
            self.breach(e["t"], requester=requester.uid, reason=reason, why="unknown cause")
        elif not cause(world, requester, world.provider_of(requester.uid)):
            self.breach(e["t"], requester=requester.uid, reason=reason, why="cause not true")
