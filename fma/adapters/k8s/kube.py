"""The few untyped calls of the Kubernetes client the operator makes, behind typed functions."""

import json
import os
from collections.abc import Callable
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


def call_json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call`` (a client method) answered as the API server's JSON, without the client's
    models: building a V1Pod and turning it back into JSON costs milliseconds per Pod, on the
    critical path of every write. An answer that is not raw (a test's fake) comes back as it
    is."""
    answer = call(*args, _preload_content=False, **kwargs)
    data = getattr(answer, "data", None)
    if not isinstance(data, bytes | str):
        return answer
    release = getattr(answer, "release_conn", None)
    if callable(release):
        release()
    return json.loads(data) if data else {}


def kubeconfig_namespace() -> str | None:
    """The namespace of the kubeconfig's current context, if it names one."""
    _, current = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    namespace = ((current or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None
