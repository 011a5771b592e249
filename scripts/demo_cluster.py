"""``make demo-cluster``: FMA installed by its Helm chart on the test control plane, and a
cold, a warm and a hot actuation shown live.

1. ``fma testcluster up`` (two fake GPU nodes; the pod runner really runs FMA's Pods, as
   root) and ``helm install charts/fma`` into namespace ``fma``;
2. ``kubectl get pods -w`` runs while a LauncherConfig of the stub engine and two
   InferenceServerConfigs are made, and then
   - **cold**: requester ``smollm`` on a node with no launcher (one is made for it:
     ``cold_launcher``);
   - **warm**: a population policy keeps a second launcher on that node; requester ``qwen``
     gets a new instance from it;
   - **hot**: ``smollm`` is scaled to 0 (its instance falls asleep) and back to 1 (it is woken);
3. the Events of the actuations, ``fma_actuation_seconds`` from the operator's ``/metrics``
   and the end of its log (``kubectl logs``, served through the test control plane's kubelet
   API);
4. ``fma testcluster down`` (``KEEP=1`` keeps the cluster and says how to remove it).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
FMA = Path(sys.executable).parent / "fma"
NAMESPACE = "fma"
NODE = "gpu-node-0"
IMAGE = "ghcr.io/llm-d-fma/fma:demo"
TIMEOUT = "180s"
STUB = "--stub-start-s 2 --stub-sleep-s 0.5 --stub-wake-s 0.5"
"""The stub engine's latencies: a cold start visibly slower than a wake."""


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(*argv: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv[:3])} ...: {done.stderr.strip() or done.stdout}")
    return done.stdout


class Cluster:
    """The demo's control plane, reached with its own kubectl and helm."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.bin = Path(info["bin_dir"])
        self.env = {
            **os.environ,
            "KUBECONFIG": info["kubeconfig"],
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "HELM_CACHE_HOME": str(Path(info["state_dir"]) / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(Path(info["state_dir"]) / "helm" / "config"),
            "HELM_DATA_HOME": str(Path(info["state_dir"]) / "helm" / "data"),
        }

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return run(str(self.bin / "kubectl"), "-n", NAMESPACE, *args, env=self.env, stdin=stdin)

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))

    def helm(self, *args: str) -> str:
        return run(str(self.bin / "helm"), *args, env=self.env)

    @contextmanager
    def watching_pods(self) -> Iterator[None]:
        """``kubectl get pods -w``, with the binding and sleeping labels, while the body runs."""
        watch = subprocess.Popen(
            [str(self.bin / "kubectl"), "-n", NAMESPACE, "get", "pods", "-w",
             "-L", "dual-pods.llm-d.ai/dual,dual-pods.llm-d.ai/sleeping"],
            env=self.env,
        )  # fmt: skip
        try:
            yield
        finally:
            time.sleep(1)  # the last changes reach the terminal
            watch.terminate()
            watch.wait(5)


# --- the objects ---------------------------------------------------------------------------


def launcher_config() -> dict[str, Any]:
    container = {
        "name": "inference-server",
        "image": IMAGE,
        "args": ["launcher", "serve", "--engine", "stub"],
        "readinessProbe": {
            "httpGet": {"path": "/v2/vllm/instances", "port": 8001},
            "periodSeconds": 1,
        },
    }
    spec = {"serviceAccountName": "fma-launcher", "containers": [container]}
    return custom("LauncherConfig", "stub", {"maxInstances": 2, "podTemplate": {"spec": spec}})


def isc(name: str, port: int) -> dict[str, Any]:
    server = {"port": port, "options": f"--model {name} {STUB}"}
    return custom(
        "InferenceServerConfig",
        name,
        {"launcherConfigName": "stub", "modelServerConfig": server},
    )


def population(count: int) -> dict[str, Any]:
    spec = {
        "enhancedNodeSelector": {
            "labelSelector": {"matchLabels": {"kubernetes.io/hostname": NODE}}
        },
        "countForLauncher": [{"launcherConfigName": "stub", "launcherCount": count}],
    }
    return custom("LauncherPopulationPolicy", "two-per-node", spec)


def custom(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def requesters(name: str) -> dict[str, Any]:
    """A ReplicaSet of one requester of ISC ``name`` on :data:`NODE`, holding one GPU."""
    container = {
        "name": "inference-server",
        "image": IMAGE,
        "args": ["requester", "serve"],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
    }
    template = {
        "metadata": {
            "labels": {"app": name},
            "annotations": {"dual-pods.llm-d.ai/inference-server-config": name},
        },
        "spec": {"nodeSelector": {"kubernetes.io/hostname": NODE}, "containers": [container]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template},
    }


# --- the steps -----------------------------------------------------------------------------


def served(cluster: Cluster, app: str) -> str:
    """Wait until ``app``'s requester is Ready (its readiness relayed); its provider's name."""
    cluster.kubectl(
        "wait", "--for=condition=Ready", "pod", "-l", f"app={app}", f"--timeout={TIMEOUT}"
    )
    labels = cluster.kubectl(
        "get", "pods", "-l", f"app={app}", "-o", "jsonpath={.items[0].metadata.labels}"
    )
    return str(json.loads(labels)["dual-pods.llm-d.ai/dual"])


def actuate(cluster: Cluster) -> None:
    cluster.apply(launcher_config(), isc("smollm", 8005), isc("qwen", 8006))
    say("cold: requester smollm on a node with no launcher — a launcher is made for it")
    cluster.apply(requesters("smollm"))
    sleeper = served(cluster, "smollm")
    say("warm: a population policy keeps two launchers on the node; qwen gets a new instance")
    cluster.apply(population(2))
    cluster.kubectl(
        "wait", "--for=condition=Ready", "pod", "-l", "app.kubernetes.io/component=launcher",
        f"--timeout={TIMEOUT}",
    )  # fmt: skip
    cluster.apply(requesters("qwen"))
    served(cluster, "qwen")
    say(f"hot: smollm scaled to 0 (its instance on {sleeper} falls asleep), then back to 1")
    cluster.kubectl("scale", "replicaset/smollm", "--replicas=0")
    cluster.kubectl("wait", "--for=delete", "pod", "-l", "app=smollm", f"--timeout={TIMEOUT}")
    cluster.kubectl(
        "wait", "--for=jsonpath={.metadata.labels.dual-pods\\.llm-d\\.ai/sleeping}=true",
        f"pod/{sleeper}", f"--timeout={TIMEOUT}",
    )  # fmt: skip
    cluster.kubectl("scale", "replicaset/smollm", "--replicas=1")
    woken = served(cluster, "smollm")
    assert woken == sleeper, f"smollm was served by {woken}, not woken on {sleeper}"


def report(cluster: Cluster) -> None:
    say("the Events of the actuations")
    print(
        cluster.kubectl(
            "get", "events", "--sort-by=.lastTimestamp",
            "--field-selector=reason!=Scheduled,reason!=SuccessfulCreate,reason!=ScalingReplicaSet,"
            "reason!=SuccessfulDelete",
            "-o", "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message",
        ),
        end="",
    )  # fmt: skip
    say("fma_actuation_seconds, from the operator's /metrics")
    ip = cluster.kubectl(
        "get", "pods", "-l", "app.kubernetes.io/component=dual-pods-controller",
        "-o", "jsonpath={.items[0].status.podIP}",
    )  # fmt: skip
    text = httpx.get(f"http://{ip}:8002/metrics", timeout=5, trust_env=False).text
    for line in text.splitlines():  # as Prometheus reads them
        if line.startswith(("fma_actuation_seconds_count", "fma_actuation_seconds_sum")):
            print(line)
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fma_actuation_seconds_count":
                counts[sample.labels["path"]] = sample.value
            elif sample.name == "fma_actuation_seconds_sum":
                sums[sample.labels["path"]] = sample.value
    print(f"\n{'path':<15}{'count':>6}{'mean (s)':>10}")
    for path in sorted(counts):
        print(f"{path:<15}{counts[path]:>6g}{sums[path] / counts[path]:>10.2f}")
    say("kubectl logs deployment/fma-dual-pods-controller --tail=15")
    print(cluster.kubectl("logs", "deployment/fma-dual-pods-controller", "--tail=15"), end="")


def main() -> int:
    if os.geteuid() != 0:
        print(
            "error: make demo-cluster needs root: the pod runner runs FMA's Pods", file=sys.stderr
        )
        return 2
    state_dir = Path(tempfile.mkdtemp(prefix="fma-demo-cluster-"))
    say(f"fma testcluster up (state in {state_dir})")
    info = json.loads(
        run(
            str(FMA),
            "testcluster",
            "up",
            "--namespace",
            NAMESPACE,
            "--state-dir",
            str(state_dir),
            "--json",
        )
    )
    cluster = Cluster(info)
    keep = os.environ.get("KEEP") == "1"
    try:
        say("helm install fma charts/fma")
        print(
            cluster.helm(
                "install", "fma", str(ROOT / "charts" / "fma"), "--namespace", NAMESPACE,
                "--set", f"image.tag={IMAGE.rsplit(':', 1)[1]}", "--wait", f"--timeout={TIMEOUT}",
            ).split("NOTES:")[0],
            end="",
        )  # fmt: skip
        with cluster.watching_pods():
            actuate(cluster)
        report(cluster)
    finally:
        if keep:
            say(f"kept: KUBECONFIG={info['kubeconfig']}; `fma testcluster down` removes it")
        else:
            say("fma testcluster down")
            run(str(FMA), "testcluster", "down", "--state-dir", str(state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
