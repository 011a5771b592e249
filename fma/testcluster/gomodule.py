"""The throw-away Go module the test binaries are compiled from (pure text, no I/O).

No third-party source is committed: the module is three small generated files that
*require* the published modules and let the Go module proxy supply them. Everything builds in
one ``go build`` so that the shared packages (client-go, apimachinery, grpc, ...) compile once.
"""

from dataclasses import dataclass
from typing import Final

from fma.testcluster import versions as v

MODULE_PATH: Final = "fma.local/testbin"


@dataclass(frozen=True)
class Binary:
    """One program of the test control plane and the Go package it is built from."""

    name: str
    package: str


BINARIES: Final = (
    Binary("etcd", "./cmd/etcd"),
    Binary("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
    Binary("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"),
    Binary("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
    Binary("kubectl", "k8s.io/kubernetes/cmd/kubectl"),
    Binary("kwok", "sigs.k8s.io/kwok/cmd/kwok"),
    Binary("helm", "helm.sh/helm/v3/cmd/helm"),
)
"""Every binary ``fma testcluster build`` puts into the cache, in build order."""

BINARY_NAMES: Final = tuple(b.name for b in BINARIES)


def go_mod() -> str:
    """The wrapper's go.mod: the four pinned modules plus a replace per staging module."""
    replaces = "\n".join(
        f"\tk8s.io/{name} => k8s.io/{name} {v.STAGING_VERSION}" for name in v.STAGING_MODULES
    )
    return (
        f"module {MODULE_PATH}\n\n"
        "go 1.24.0\n\n"
        # Upstream's own go.mod sets this; without it Go 1.26 defaults would change behaviour.
        "godebug default=go1.24\n\n"
        "require (\n"
        f"\tk8s.io/kubernetes {v.KUBERNETES_VERSION}\n"
        f"\tgo.etcd.io/etcd/server/v3 {v.ETCD_VERSION}\n"
        f"\tsigs.k8s.io/kwok {v.KWOK_VERSION}\n"
        f"\thelm.sh/helm/v3 {v.HELM_VERSION}\n"
        ")\n\n"
        f"replace (\n{replaces}\n)\n"
    )


TOOLS_GO: Final = """//go:build tools

// Package tools pins the commands built from other modules, so that go mod tidy keeps them.
package tools

import (
\t_ "helm.sh/helm/v3/cmd/helm"
\t_ "k8s.io/kubernetes/cmd/kube-apiserver"
\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"
\t_ "k8s.io/kubernetes/cmd/kube-scheduler"
\t_ "k8s.io/kubernetes/cmd/kubectl"
\t_ "sigs.k8s.io/kwok/cmd/kwok"
)
"""

ETCD_MAIN_GO: Final = """// Command etcd runs the etcd server as upstream's own main package does.
//
// Upstream's server module cannot be go-installed (its go.mod has replace directives), but
// replace directives of a dependency are ignored, so a one-line wrapper builds it.
package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""

FILES: Final = {
    "tools.go": TOOLS_GO,
    "cmd/etcd/main.go": ETCD_MAIN_GO,
}
"""The generated source files besides go.mod, by path relative to the module root."""


def ldflags() -> list[str]:
    """Linker flags: strip symbols, and stamp the versions that ``/version`` and Helm report.

    Without the ``-X`` values kube-apiserver answers ``v0.0.0-master`` on ``/version`` (Helm's
    ``kubeVersion`` constraints and kubectl's skew check read it) and Helm's offline
    ``template``/``lint`` assume Kubernetes 1.20. ``-X`` of a symbol a binary does not link is
    ignored, so one set serves every binary of the single ``go build``.
    """
    minor = v.kubernetes_minor()
    stamps = {
        "k8s.io/component-base/version.gitVersion": v.KUBERNETES_VERSION,
        "k8s.io/component-base/version.gitMajor": "1",
        "k8s.io/component-base/version.gitMinor": minor,
        "k8s.io/component-base/version.gitTreeState": "clean",
        "k8s.io/client-go/pkg/version.gitVersion": v.KUBERNETES_VERSION,
        "k8s.io/client-go/pkg/version.gitMajor": "1",
        "k8s.io/client-go/pkg/version.gitMinor": minor,
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor": minor,
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor": minor,
        "helm.sh/helm/v3/internal/version.version": v.HELM_VERSION,
    }
    return ["-s", "-w", *(f"-X {key}={value}" for key, value in stamps.items())]
