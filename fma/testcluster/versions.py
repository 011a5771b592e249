"""The pinned versions of every program the test control plane is built from.

One Kubernetes minor for everything: kube-apiserver, kube-controller-manager, kube-scheduler
and kubectl come from ``k8s.io/kubernetes``; etcd is the server version that Kubernetes' own
module graph already pins; KWOK v0.7 and Helm v3.18 are the releases built against the same
``k8s.io/*`` v0.33 libraries. Because they agree, all of them are compiled from one Go module
in one ``go build`` and share one build cache (see :mod:`fma.testcluster.gomodule`).

Changing any value here changes the cache key, so the next ``fma testcluster build`` rebuilds.
"""

from typing import Final

KUBERNETES_VERSION: Final = "v1.33.13"
"""``k8s.io/kubernetes`` tag. Built with Go 1.26 (it needs Go >= 1.24)."""

STAGING_VERSION: Final = "v0.33.13"
"""The tag of the published staging modules (``k8s.io/api`` ...) that match it."""

ETCD_VERSION: Final = "v3.5.21"
"""``go.etcd.io/etcd/server/v3``: the version kubernetes v1.33 itself requires (>= 3.5.13)."""

KWOK_VERSION: Final = "v0.7.0"
"""``sigs.k8s.io/kwok``: the newest tag whose go.mod needs no Go newer than 1.26."""

HELM_VERSION: Final = "v3.18.6"
"""``helm.sh/helm/v3``: the last v3 line built against the ``k8s.io/*`` v0.33 libraries."""

STAGING_MODULES: Final = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
)
"""The modules ``k8s.io/kubernetes`` requires at ``v0.0.0`` and maps to ``./staging/src``.

The published go.mod cannot be used as is (``v0.0.0`` does not exist on the module proxy), so
the wrapper module replaces each with its published ``STAGING_VERSION`` tag. The list is the
``replace`` block of kubernetes' go.mod at the tag; extra entries would be harmless.
"""


def kubernetes_minor() -> str:
    """The minor number of :data:`KUBERNETES_VERSION`, e.g. ``"33"``."""
    return KUBERNETES_VERSION.lstrip("v").split(".")[1]
