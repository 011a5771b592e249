"""The pod runner's pure rules, without a cluster: image choice, $(VAR) expansion, the
environment, GPU assignment, Pod IPs and the phase, as the kubelet computes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fma.testcluster.podrunner import gpus, hosts, images, stages, status
from fma.testcluster.podrunner.env import ConfigError, EnvSources, resolve, service_env
from fma.testcluster.podrunner.expansion import expand
from fma.testcluster.podrunner.ipam import IpAllocator

pytestmark = pytest.mark.integration

FMA = Path("/venv/bin/fma")


@pytest.mark.parametrize(
    ("image", "ours"),
    [
        ("ghcr.io/llm-d-fma/fma", True),
        ("ghcr.io/llm-d-fma/fma:v0.3.1", True),
        ("localhost:5000/llm-d-fma/fma:dev", True),
        ("llm-d-fma/fma@sha256:" + "ab" * 32, True),
        ("mirror.example/cache/llm-d-fma/fma:1", True),
        ("docker.io/someone/fma:latest", False),
        ("ghcr.io/llm-d-fma/fma-extra", False),
        ("ghcr.io/llm-d-fma/fmax:1", False),
        ("registry.invalid/none", False),
    ],
)
def test_only_the_projects_image_is_run(image: str, ours: bool) -> None:
    assert images.is_project_image(image) is ours
    assert images.IMAGE_PATTERN in stages.RUNS_PROJECT_IMAGE  # KWOK skips exactly these


def test_entrypoint_command_and_args() -> None:
    c = {"image": "ghcr.io/llm-d-fma/fma:1", "args": ["launcher", "serve", "--port", "$(P)"]}
    assert images.container_argv(c, FMA, {"P": "8001"}) == [
        str(FMA), "launcher", "serve", "--port", "8001"
    ]  # fmt: skip
    c = {"image": "ghcr.io/llm-d-fma/fma:1", "command": ["fma", "requester"], "args": ["serve"]}
    assert images.container_argv(c, FMA, {}) == [str(FMA), "requester", "serve"]
    c = {"image": "ghcr.io/llm-d-fma/fma:1", "command": ["/app/.venv/bin/fma", "x"]}
    assert images.container_argv(c, FMA, {}) == [str(FMA), "x"]
    with pytest.raises(images.NotRunnable) as shell:
        images.container_argv({"image": c["image"], "command": ["sh", "-c", "x"]}, FMA, {})
    assert shell.value.reason == "StartError" and "'sh'" in str(shell.value)
    with pytest.raises(images.NotRunnable) as other:
        images.container_argv({"image": "busybox"}, FMA, {})
    assert other.value.reason == "ErrImageNeverPull"


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("ghcr.io/llm-d-fma/fma:vllm-cpu", "vllm-cpu"),
        ("localhost:5000/llm-d-fma/fma:vllm-cpu@sha256:" + "ab" * 32, "vllm-cpu"),
        ("localhost:5000/llm-d-fma/fma", None),
        ("llm-d-fma/fma@sha256:" + "ab" * 32, None),
    ],
)
def test_an_image_tag(image: str, tag: str | None) -> None:
    assert images.image_tag(image) == tag


def test_the_vllm_cpu_tag_runs_the_vllm_environment_once_it_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fma.launcher import vllm_env

    monkeypatch.setenv("FMA_CACHE", str(tmp_path))
    vllm = "ghcr.io/llm-d-fma/fma:vllm-cpu"
    assert images.image_program("ghcr.io/llm-d-fma/fma:dev", FMA) == FMA
    with pytest.raises(images.NotRunnable) as absent:
        images.image_program(vllm, FMA)
    assert absent.value.reason == "ErrImageNeverPull"
    assert "vllm_env ensure" in str(absent.value)
    vllm_env.venv_python().parent.mkdir(parents=True)
    vllm_env.venv_python().touch()
    (vllm_env.venv_dir() / vllm_env.STAMP_NAME).touch()
    assert images.image_program(vllm, FMA) == vllm_env.venv_dir() / "bin" / "fma"


def test_a_pods_hosts_file_names_it_at_its_ip_as_the_kubelets_does() -> None:
    pod = {
        "spec": {
            "hostAliases": [
                {"ip": "10.1.2.3", "hostnames": ["db", "db.local"]},
                {"ip": "10.1.2.4"},  # no names: nothing to write
            ]
        }
    }
    text = hosts.hosts_file(pod, "10.244.0.254", "launcher-x")
    lines = text.splitlines()
    assert lines[0] == "# Kubernetes-managed hosts file."
    assert "127.0.0.1\tlocalhost" in lines
    assert "10.244.0.254\tlauncher-x" in lines
    assert lines[-2:] == ["# Entries added by HostAliases.", "10.1.2.3\tdb\tdb.local"]
    assert "10.1.2.4" not in text
    assert "HostAliases" not in hosts.hosts_file({}, "10.244.0.254", "x")


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)", "a"),
        ("x$(A)y$(B)z", "xaybz"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$a"),
        ("$(A", "$(A"),
        ("$A", "$A"),
        ("a$", "a$"),
        ("$()", "$()"),
        ("", ""),
    ],
)
def test_expansion_matches_the_kubelet(text: str, expanded: str) -> None:
    assert expand(text, {"A": "a", "B": "b"}) == expanded


def _pod() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {"app": "x", "tier": "web"},
            "annotations": {"note": 'say "hi"'},
        },
        "spec": {"nodeName": "gpu-node-0", "serviceAccountName": "sa"},
        "status": {"podIP": "10.1.0.254", "hostIP": "10.0.0.2"},
    }


def _sources(**objects: dict[str, str]) -> EnvSources:
    def read(kind: str) -> Any:
        return lambda namespace, name: objects.get(f"{kind}/{namespace}/{name}")

    return EnvSources(read("cm"), read("secret"), {"cpu": "64", "memory": "512Gi"})


def test_environment_is_resolved_like_the_kubelet() -> None:
    container = {
        "name": "c",
        "resources": {"limits": {"memory": "2Gi"}, "requests": {"cpu": "250m"}},
        "envFrom": [{"configMapRef": {"name": "all"}, "prefix": "CM_"}],
        "env": [
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "one", "key": "k"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {
                "name": "GONE",
                "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
            {"name": "URL", "value": "http://$(IP):$(KUBERNETES_SERVICE_PORT)/$(LATER)$$"},
            {"name": "LATER", "value": "late"},
        ],
    }
    sources = _sources(
        **{"cm/ns/all": {"a": "1", "b=c": "skipped"}, "cm/ns/one": {"k": "v"}},
        **{"secret/ns/s": {"pw": "hunter2"}},
    )
    env = resolve(_pod(), container, sources=sources, services=service_env("10.1.255.1", 6443))
    assert env["CM_a"] == "1" and "CM_b=c" not in env
    assert (env["NODE"], env["NS"], env["APP"]) == ("gpu-node-0", "ns", "x")
    assert env["IP"] == "10.1.0.254"
    assert env["LABELS"] == 'app="x"\ntier="web"'
    assert (env["SA"], env["CPU"], env["REQ"], env["MEM"]) == ("sa", "64", "1", "2048")
    assert (env["KEY"], env["PW"]) == ("v", "hunter2")
    assert "GONE" not in env
    assert env["URL"] == "http://10.1.0.254:6443/$(LATER)$"  # only variables defined before
    assert env["KUBERNETES_SERVICE_HOST"] == "10.1.255.1"


def test_a_missing_reference_is_a_config_error() -> None:
    for ref, message in (
        ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
        ({"secretKeyRef": {"name": "s", "key": "x"}}, "couldn't find key x in Secret ns/s"),
    ):
        container = {"name": "c", "env": [{"name": "X", "valueFrom": ref}]}
        with pytest.raises(ConfigError, match=message):
            resolve(_pod(), container, sources=_sources(**{"secret/ns/s": {}}), services={})


def test_gpus_are_exclusive_lowest_first_and_kept_across_restarts() -> None:
    node = [f"GPU-n-{i}" for i in range(8)]
    alloc = gpus.GpuAllocator()
    first = alloc.allocate("n", "pod-a/c", 4, node)
    second = alloc.allocate("n", "pod-b/c", 4, node)
    assert first == node[:4] and second == node[4:]
    assert alloc.allocate("n", "pod-a/c", 4, node) == first  # a restart keeps them
    with pytest.raises(gpus.NotEnoughGpus, match="Requested: 1, Available: 0"):
        alloc.allocate("n", "pod-c/c", 1, node)
    alloc.release("pod-a/")
    assert alloc.allocate("n", "pod-c/c", 2, node) == node[:2]
    assert gpus.visible_devices({"NVIDIA_VISIBLE_DEVICES": "all"}, [], node) == ",".join(node)
    assert gpus.visible_devices({}, [], node) is None
    assert gpus.requested({"resources": {"limits": {"nvidia.com/gpu": "3"}}}) == 3


def test_pod_ips_come_from_the_top_and_skip_every_seen_address() -> None:
    ips = IpAllocator()
    ips.observe("fake", "10.1.0.254")
    assert ips.allocate("10.1.0.0/24", "a") == "10.1.0.253"
    assert ips.allocate("10.1.0.0/24", "a") == "10.1.0.253"
    assert ips.allocate("10.1.0.0/24", "b") == "10.1.0.252"
    ips.release("a")
    assert ips.allocate("10.1.0.0/24", "c") == "10.1.0.253"


def _view(policy: str, *states: dict[str, Any], last: dict[str, Any] | None = None) -> Any:
    containers = [status.ContainerView(f"c{i}", "img", state=s) for i, s in enumerate(states)]
    if last:
        containers[0].last_state = last
    return status.PodView(restart_policy=policy, init=[], containers=containers)


def test_phase_follows_the_kubelet() -> None:
    run = status.running("t")
    ok, bad = status.terminated(0, "t", "t"), status.terminated(1, "t", "t")
    assert status.phase(_view("Always", status.waiting("ContainerCreating"))) == "Pending"
    assert status.phase(_view("Always", run, ok)) == "Running"
    assert status.phase(_view("Always", status.waiting("CrashLoopBackOff"), last=bad)) == "Running"
    assert status.phase(_view("Never", ok, ok)) == "Succeeded"
    assert status.phase(_view("Never", ok, bad)) == "Failed"
    assert status.phase(_view("OnFailure", bad)) == "Running"
    deleted = _view("Always", bad)
    deleted.terminating = True
    assert status.phase(deleted) == "Failed"


def test_conditions_keep_their_transition_time() -> None:
    view = _view("Always", status.running("t"))
    view.containers[0].ready = True
    view.sandbox_ready = True
    first = status.conditions(view, [])
    ready = next(c for c in first if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] is None
    old = [{**c, "lastTransitionTime": "2000-01-01T00:00:00Z"} for c in first]
    again = status.conditions(view, old)
    assert all(c["lastTransitionTime"] == "2000-01-01T00:00:00Z" for c in again)
    view.containers[0].ready = False
    flipped = next(c for c in status.conditions(view, old) if c["type"] == "Ready")
    assert flipped["status"] == "False" and flipped["lastTransitionTime"] != "2000-01-01T00:00:00Z"
    assert flipped["message"] == "containers with unready status: [c0]"
