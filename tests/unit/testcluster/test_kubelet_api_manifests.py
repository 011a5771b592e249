"""The per-Pod KWOK resources that configure logs, exec and port-forward."""

from pathlib import Path
from typing import Any

from fma.testcluster.podrunner import kubelet_api
from fma.testcluster.podrunner.exec_shim import CONTAINER_VARIABLE

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
    "spec": {
        "initContainers": [{"name": "init"}],
        "containers": [
            {
                "name": "a",
                "ports": [{"containerPort": 9000}, {"containerPort": 53, "protocol": "UDP"}],
            },
            {"name": "b", "workingDir": "/srv"},
        ],
    },
}


def _by_kind(pod_dir: Path) -> dict[str, Any]:
    return {r["kind"]: r for r in kubelet_api.pod_resources(POD, pod_dir, "10.1.2.3")}


def test_each_resource_is_named_like_the_pod_and_owned_by_it(tmp_path: Path) -> None:
    for resource in _by_kind(tmp_path).values():
        meta = resource["metadata"]
        assert (meta["name"], meta["namespace"]) == ("p", "ns")
        assert [o["uid"] for o in meta["ownerReferences"]] == ["u1"]


def test_every_container_has_its_logs_and_exec(tmp_path: Path) -> None:
    resources = _by_kind(tmp_path)
    logs = {entry["containers"][0]: entry for entry in resources["Logs"]["spec"]["logs"]}
    assert set(logs) == {"init", "a", "b"}
    assert logs["b"]["logsFile"] == str(tmp_path / "b" / "current.cri")
    assert logs["b"]["previousLogsFile"] == str(tmp_path / "b" / "previous.cri")
    execs = {entry["containers"][0]: entry["local"] for entry in resources["Exec"]["spec"]["execs"]}
    assert execs["b"]["workDir"] == "/srv"
    assert execs["a"]["workDir"] == "/"
    assert execs["a"]["envs"] == [{"name": CONTAINER_VARIABLE, "value": str(tmp_path / "a")}]


def test_declared_tcp_ports_and_fmas_range_forward_to_the_pod_ip(tmp_path: Path) -> None:
    forwards = _by_kind(tmp_path)["PortForward"]["spec"]["forwards"]
    ports = [f["ports"] for f in forwards]
    assert all(len(p) == 1 for p in ports)
    forwarded = {p[0] for p in ports}
    assert {9000, 8000, 8001, 8082, 8099} <= forwarded
    assert not {53, 7999, 8100} & forwarded
    assert all(f["target"] == {"port": f["ports"][0], "address": "10.1.2.3"} for f in forwards)


def test_a_shim_for_every_program_on_the_search_path(tmp_path: Path) -> None:
    programs = tmp_path / "programs"
    programs.mkdir()
    for name, mode in (("tool", 0o755), ("data", 0o644)):
        (programs / name).write_text("")
        (programs / name).chmod(mode)
    bin_dir = kubelet_api.install_exec_shims(tmp_path / "kubelet", [programs, tmp_path / "none"])
    assert sorted(p.name for p in bin_dir.iterdir()) == ["tool"]
    assert (bin_dir / "tool").resolve() == (tmp_path / "kubelet" / "exec-shim").resolve()
