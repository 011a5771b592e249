"""The few untyped calls of the Kubernetes client the operator makes, behind typed functions."""

import os
from typing import Any, cast

from kubernetes import client, config


def connect() -> client.ApiClient:
    """A client with the in-cluster configuration inside a Pod, else ``$KUBECONFIG`` (or
    ``~/.kube/config``)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def close(api: client.ApiClient) -> None:
    api.close()  # type: ignore[no-untyped-call]


def as_dict(api: client.ApiClient, obj: object) -> dict[str, Any]:
    """A client model (a V1Pod, ...) as the API server's JSON: camelCase keys, no Nones."""
    return cast(dict[str, Any], api.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]


def kubeconfig_namespace() -> str | None:
    """The namespace of the kubeconfig's current context, if it names one."""
    _, current = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    namespace = ((current or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None
