"""Two replicas of ``fma operator run --leader-elect`` on the real control plane: only the
Lease's holder acts; a killed leader is replaced once the lease has run out, a stopped one at
once; a leader that finds its Lease taken stops; the health endpoints tell leader from
standby."""

from __future__ import annotations

import datetime as dt
import socket
import time
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fma.bench.invariants import check_safety
from tests.integration.operator.harness import OperatorProcess, World, is_ready

pytestmark = pytest.mark.integration

LEASE = "fma-controller"
NODE = "gpu-node-0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Replica:
    """One ``fma operator run --leader-elect`` with its identity and health port."""

    def __init__(self, world: World, identity: str, lease: tuple[float, float, float]) -> None:
        self.identity = identity
        self.port = free_port()
        duration, deadline, retry = lease
        self.process: OperatorProcess = world.operator(
            "--leader-elect",
            "--identity",
            identity,
            "--lease-duration",
            str(duration),
            "--renew-deadline",
            str(deadline),
            "--retry-period",
            str(retry),
            "--health-port",
            str(self.port),
            name=identity,
        )

    def health(self, path: str) -> int | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2).status_code
        except httpx.HTTPError:
            return None


def lease_of(world: World) -> Any:
    return client.CoordinationV1Api(world.api).read_namespaced_lease(LEASE, world.namespace)


def holder(world: World) -> str | None:
    try:
        lease = lease_of(world)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return lease.spec.holder_identity if lease.spec else None


def elect(world: World, lease: tuple[float, float, float]) -> tuple[Replica, Replica]:
    """Start two replicas at once; (leader, standby) once one holds the Lease and acts."""
    replicas = {r.identity: r for r in (Replica(world, "a", lease), Replica(world, "b", lease))}
    chosen = world.wait(lambda: holder(world), "a replica to hold the Lease")
    leader = replicas[chosen]
    standby = next(r for r in replicas.values() if r is not leader)
    world.wait(lambda: leader.health("/readyz") == 200, "the leader to be ready")
    world.wait(lambda: standby.health("/healthz") == 200, "the standby to answer")
    return leader, standby


def stock(world: World) -> None:
    world.launcher_config("lc1", max_instances=2)
    world.isc("isc1", port=8005, model="smollm")
    world.population("lpp1", "lc1", 1, {"matchLabels": {"nvidia.com/gpu.present": "true"}})


def launchers_ready(world: World) -> bool:
    return all(any(is_ready(p) for p in world.launchers(n)) for n in world.cluster.nodes)


def operator_lines(process: OperatorProcess) -> list[str]:
    """The operator's own log lines (not Kopf's, not the libraries')."""
    return [line for line in process.log_text().splitlines() if " fma.operator: " in line]


def judge_as_one(world: World, replicas: tuple[Replica, Replica]) -> None:
    """The replicas' traces, merged in time order, are one controller's: each replica acted
    only after the other had stopped. Judged together by the safety checkers (alone, a new
    leader's trace lacks what its predecessor made)."""
    processes = [r.process for r in replicas]
    for process in processes:
        process.stop()
    merged = sorted((e for p in processes for e in p.events()), key=lambda e: e["t"])
    assert not check_safety(merged)
    for process in processes:
        world.operators.remove(process)


def test_only_the_leader_acts_and_a_standby_takes_over_a_killed_leader_after_the_lease(
    world: World,
) -> None:
    lease_s, retry_s = 4.0, 0.5
    stock(world)
    leader, standby = elect(world, (lease_s, 3.0, retry_s))
    world.wait(lambda: launchers_ready(world), "the population's launchers to be Ready")
    world.replicaset("rs1", isc="isc1", node=NODE)
    world.served("rs1")

    assert [e["kind"] for e in leader.process.events() if e["kind"] == "actuation"]
    assert standby.process.events() == []  # no trace: it never built an operator
    waiting = operator_lines(standby.process)
    assert waiting and all("leader election" in line for line in waiting), waiting
    assert (leader.health("/healthz"), leader.health("/readyz")) == (200, 200)
    assert (standby.health("/healthz"), standby.health("/readyz")) == (200, 503)

    renewed = lease_of(world).spec.renew_time.timestamp()  # the last renewal, or one before
    leader.process.stop(kill=True)
    killed = time.time()
    world.wait(lambda: holder(world) == standby.identity, "the standby to take the Lease", 30)
    taken = time.time()
    # Not before the lease has run out after the last renewal the standby saw, and at its
    # next try after that.
    assert taken >= renewed + lease_s - 0.3, (taken - renewed, taken - killed)
    assert taken - killed <= lease_s + 2 * retry_s + 3.0, taken - killed
    world.wait(lambda: standby.health("/readyz") == 200, "the new leader to be ready")

    world.replicaset("rs2", isc="isc1", node="gpu-node-1")
    requester, _ = world.served("rs2")
    uid = requester["metadata"]["uid"]
    acted = [e for e in standby.process.events() if e.get("requester") == uid]
    assert any(e["kind"] == "actuation" for e in acted)
    world.served("rs1", timeout=10)  # what the old leader made is still served
    judge_as_one(world, (leader, standby))


def test_a_stopped_leader_hands_the_lease_over_at_once(world: World) -> None:
    lease_s = 30.0
    leader, standby = elect(world, (lease_s, 20.0, 0.5))
    assert standby.health("/readyz") == 503
    stopped_s = time.monotonic()
    assert leader.process.stop() == 0
    world.wait(lambda: holder(world) == standby.identity, "the standby to take the Lease", 15)
    handed_s = time.monotonic() - stopped_s
    assert handed_s < lease_s / 3, handed_s  # not a lease run out: a release
    assert any("released" in line for line in operator_lines(leader.process))
    world.wait(lambda: standby.health("/readyz") == 200, "the new leader to be ready")
    assert any(e["kind"] == "relist" for e in standby.process.events())
    judge_as_one(world, (leader, standby))


def test_a_leader_that_finds_its_lease_taken_stops_acting(world: World) -> None:
    leases = client.CoordinationV1Api(world.api)
    only = Replica(world, "a", (30.0, 20.0, 0.5))
    world.wait(lambda: holder(world) == "a", "the replica to hold the Lease")
    world.wait(lambda: only.health("/readyz") == 200, "the replica to be ready")
    only.process.exit_expected = True
    lease: Any = leases.read_namespaced_lease(LEASE, world.namespace)
    lease.spec.holder_identity = "someone-else"
    lease.spec.renew_time = dt.datetime.now(dt.UTC)
    leases.replace_namespaced_lease(LEASE, world.namespace, lease)

    process = only.process.proc
    assert process is not None
    world.wait(lambda: process.poll() is not None, "the replica to stop", 15)
    assert process.returncode == 1
    assert any("taken over" in line for line in operator_lines(only.process))
    assert holder(world) == "someone-else"  # it did not release what it no longer held
