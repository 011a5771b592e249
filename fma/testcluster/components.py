"""Command lines and health endpoints of the control-plane programs (pure, no I/O).

Everything listens on 127.0.0.1 only, on ports chosen free at start-up, except the
kube-apiserver of a cluster with a pod runner: it listens on the Pod network's gateway
address (see :mod:`fma.testcluster.podrunner.network`), the one address both the host and
the Pods reach, and its self-signed serving certificate names that address. The flags are the
minimal working set of a single-member control plane: etcd without fsync (test data is
throw-away), an apiserver with Node,RBAC authorization and the default admission chain plus
NodeRestriction and ValidatingAdmissionPolicy, the controller-manager with all default
controllers (Deployments, ReplicaSets, garbage collection, service accounts ...), the scheduler,
and KWOK managing only the nodes annotated ``kwok.x-k8s.io/node=fake`` (with stages that
leave the pod runner's Pods alone when there is a runner). The pod runner is this package's
own Python program, run with the interpreter of the calling process.
"""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fma.testcluster.nodes import KUBELET_ADDRESS_TYPE, KWOK_ANNOTATION, KWOK_ANNOTATION_VALUE
from fma.testcluster.podrunner.kubelet_api import KINDS as KWOK_KUBELET_KINDS

COMPONENTS: Final = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
"""The built programs, in start order; they stop in the reverse order."""

POD_RUNNER: Final = "pod-runner"
"""Started last (after KWOK), so stopped first."""

PORT_NAMES: Final = (
    "etcd-client",
    "etcd-peer",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    POD_RUNNER,
)

SERVICE_CIDR: Final = "10.96.0.0/16"
POD_CIDR: Final = "10.244.0.0/16"


@dataclass(frozen=True)
class Layout:
    """The files and ports one cluster uses; every path is inside its state directory."""

    state_dir: Path
    bin_dir: Path
    ports: dict[str, int]
    apiserver_host: str = "127.0.0.1"
    pod_cidr: str = POD_CIDR
    pod_runner: bool = False

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def sa_key(self) -> Path:
        return self.pki / "sa.key"

    @property
    def token_file(self) -> Path:
        return self.pki / "tokens.csv"

    @property
    def ca_file(self) -> Path:
        """Written by the apiserver on start: its self-signed certificate plus the CA."""
        return self.pki / "apiserver.crt"

    @property
    def server(self) -> str:
        return f"https://{self.apiserver_host}:{self.ports['kube-apiserver']}"

    @property
    def kwok_config(self) -> Path:
        """KWOK's configuration: the Pod stages that skip the runner's Pods."""
        return self.state_dir / "kwok.yaml"

    @property
    def kubelet_dir(self) -> Path:
        """The exec shim and its links, KWOK's ``PATH`` (podrunner.kubelet_api)."""
        return self.state_dir / "kubelet"

    @property
    def runner_config(self) -> Path:
        return self.state_dir / "pod-runner.json"

    def log(self, component: str) -> Path:
        return self.state_dir / "logs" / f"{component}.log"

    def binary(self, component: str) -> Path:
        if component == POD_RUNNER:
            return Path(sys.executable)
        return self.bin_dir / component


def args(component: str, lay: Layout) -> list[str]:
    """The command-line arguments of ``component`` (one of :data:`COMPONENTS`)."""
    p = lay.ports
    if component == "etcd":
        client = f"http://127.0.0.1:{p['etcd-client']}"
        peer = f"http://127.0.0.1:{p['etcd-peer']}"
        return [
            "--name=fma",
            f"--data-dir={lay.state_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=fma={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
    if component == "kube-apiserver":
        return [
            f"--etcd-servers=http://127.0.0.1:{p['etcd-client']}",
            f"--bind-address={lay.apiserver_host}",
            # Without it the apiserver looks for a default-route interface; it is also the
            # address its self-signed certificate names.
            f"--advertise-address={lay.apiserver_host}",
            f"--secure-port={p['kube-apiserver']}",
            f"--cert-dir={lay.pki}",
            f"--token-auth-file={lay.token_file}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={lay.sa_key}",
            f"--service-account-signing-key-file={lay.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,ValidatingAdmissionPolicy",
            "--allow-privileged=true",
            # Webhooks are called at their Service's endpoints (Pod IPs the host reaches), not
            # at its ClusterIP, which nothing routes without kube-proxy.
            "--enable-aggregator-routing=true",
            # No kubelets or real endpoints: do not keep rewriting the kubernetes Service's.
            "--endpoint-reconciler-type=none",
            # Every node's kubelet API is KWOK's server, at the nodes' InternalDNS address.
            f"--kubelet-preferred-address-types={KUBELET_ADDRESS_TYPE}",
            "--profiling=false",
        ]
    if component in ("kube-controller-manager", "kube-scheduler"):
        common = [
            f"--kubeconfig={lay.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={p[component]}",
            "--profiling=false",
        ]
        if component == "kube-scheduler":
            return common
        return [
            *common,
            f"--service-account-private-key-file={lay.sa_key}",
            f"--root-ca-file={lay.ca_file}",
            f"--cluster-cidr={lay.pod_cidr}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ]
    if component == "kwok":
        config = [f"--config={lay.kwok_config}"] if lay.pod_runner else []
        if lay.pod_runner:  # the runner publishes these per Pod (podrunner.kubelet_api)
            config.append(f"--enable-crds={','.join(KWOK_KUBELET_KINDS)}")
        return [
            *config,
            f"--kubeconfig={lay.kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}={KWOK_ANNOTATION_VALUE}",
            "--manage-nodes-with-label-selector=",
            f"--cidr={lay.pod_cidr}",
            "--node-ip=10.0.0.1",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{p['kwok']}",
            # The nodes' kubelet endpoint (daemonEndpoints), where the apiserver proxies
            # logs, exec and port-forward: KWOK's own server.
            f"--node-port={p['kwok']}",
        ]
    if component == POD_RUNNER:
        return ["-m", "fma.testcluster.podrunner", f"--config={lay.runner_config}"]
    raise ValueError(f"unknown component {component!r}")


def health_url(component: str, lay: Layout) -> str:
    """The URL that answers 200 once ``component`` is ready to serve."""
    p = lay.ports
    if component == "etcd":
        return f"http://127.0.0.1:{p['etcd-client']}/health"
    if component == "kube-apiserver":
        return f"{lay.server}/readyz"
    if component in ("kube-controller-manager", "kube-scheduler"):
        return f"https://127.0.0.1:{p[component]}/healthz"
    if component in ("kwok", POD_RUNNER):
        return f"http://127.0.0.1:{p[component]}/healthz"
    raise ValueError(f"unknown component {component!r}")
