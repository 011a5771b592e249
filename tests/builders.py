"""Builders of frozen domain objects with sensible defaults; tests override only what matters."""

from dataclasses import replace
from typing import Any

from fma.core.actions import Action, EmitEvent, LabelProvider, Plan, UpdateRequesterMeta
from fma.core.identity import instance_id
from fma.core.model import (
    GIB_BYTES,
    ActuationPath,
    Gpu,
    Instance,
    InstanceState,
    Node,
    NodeSnapshot,
    Provider,
    ProviderKind,
    Requester,
    ServerSpec,
)

NODE = "n1"


def spec(model: str = "llama-8b", weights_gib: float = 16, **over: Any) -> ServerSpec:
    return replace(
        ServerSpec(model=model, port=8000, weights_bytes=int(weights_gib * GIB_BYTES)), **over
    )


def node(gpus: int = 8, gpu_gib: float = 80, host_gib: float = 1024, **over: Any) -> Node:
    return replace(
        Node(
            NODE,
            tuple(Gpu(f"GPU-{i}", i, int(gpu_gib * GIB_BYTES)) for i in range(gpus)),
            int(host_gib * GIB_BYTES),
        ),
        **over,
    )


def requester(uid: str = "r1", gpus: tuple[str, ...] = ("GPU-0",), **over: Any) -> Requester:
    base = Requester(uid, f"name-{uid}", NODE, gpus, spec(), started_s=0.0)
    return replace(base, **over)


def instance(
    s: ServerSpec | None = None,
    gpus: tuple[str, ...] = ("GPU-0",),
    state: InstanceState = InstanceState.SLEEPING,
    last_used_s: float = 0.0,
    **over: Any,
) -> Instance:
    s = s or spec()
    return replace(Instance(instance_id(s, gpus), s, gpus, state, 0.0, last_used_s), **over)


def provider(name: str = "p1", inst: Instance | None = None, **over: Any) -> Provider:
    inst = inst or instance()
    return replace(Provider(name, NODE, ProviderKind.DIRECT, 0.0, (inst,)), **over)


def bound(p: Provider, r: Requester, path: ActuationPath = ActuationPath.COLD) -> Provider:
    return replace(
        p,
        bound_requester_uid=r.uid,
        bound_instance_id=p.instances[0].instance_id,
        path=path,
        bound_s=0.0,
    )


def snapshot(
    *,
    requesters: tuple[Requester, ...] = (),
    providers: tuple[Provider, ...] = (),
    n: Node | None = None,
    **over: Any,
) -> NodeSnapshot:
    return replace(NodeSnapshot(NODE, n or node(), requesters, providers), **over)


BOOKKEEPING = (EmitEvent, UpdateRequesterMeta, LabelProvider)
"""Actions that tell (Events) or label (FYI metadata, the finalizer, the sleeping label):
tests of a decision leave them out, and tests of these concerns look at them alone."""


def essential(plan: Plan) -> tuple[Action, ...]:
    """The plan's actions without :data:`BOOKKEEPING`."""
    return tuple(a for a in plan.actions if not isinstance(a, BOOKKEEPING))


def steady(r: Requester, p: Provider) -> tuple[Requester, Provider]:
    """``r`` bound to ``p`` with the metadata the controller keeps on both (finalizer, labels),
    so that an unchanged pair needs no write."""
    labels = {"dual-pods.llm-d.ai/dual": p.name}
    if p.kind is ProviderKind.LAUNCHER and p.bound_instance_id is not None:
        labels["dual-pods.llm-d.ai/instance"] = p.bound_instance_id
    awake = any(i.state is InstanceState.AWAKE for i in p.instances)
    sleeping = {"dual-pods.llm-d.ai/sleeping": "false" if awake else "true"}
    return replace(r, finalizer=True, labels=labels), replace(p, labels=sleeping)
