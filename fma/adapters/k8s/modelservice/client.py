"""The reconciler's API calls, for any resource by its path: typed, blocking, one error type.

The generated Kubernetes client has a method per built-in kind and a generic one for custom
resources only; a ModelService's children are of both sorts, and server-side apply is neither.
So the requests are built from :class:`~.kinds.Resource` paths and sent through the client's
own request machinery (its configuration, authentication and TLS). Callers run these in a
thread (``asyncio.to_thread``).
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from kubernetes import client

from fma.adapters.k8s.modelservice.kinds import Resource, resource_of

Obj = dict[str, Any]
FIELD_MANAGER: Final = "fma-modelservice"
TIMEOUT_S: Final = 30.0
_APPLY: Final = "application/apply-patch+yaml"
_MERGE: Final = "application/merge-patch+json"


class ApiError(Exception):
    """A request the API server refused (or that did not reach it): ``status`` (0: no
    answer), ``reason`` (the Status reason, e.g. ``Invalid``) and a one-line message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}" if status else message)


def _error(status: int, body: bytes | str | None) -> ApiError:
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    try:
        answer = json.loads(text)
    except ValueError:
        return ApiError(status, "", " ".join(text.split())[:500])
    return ApiError(status, str(answer.get("reason") or ""), str(answer.get("message") or text))


def request(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    query: Sequence[tuple[str, str]] = (),
    body: Any = None,
    content_type: str | None = None,
) -> Obj:
    """One request; the answer's JSON object. Raises :class:`ApiError`."""
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        serialized = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*serialized, _request_timeout=TIMEOUT_S)
        response.read()  # type: ignore[no-untyped-call]
    except OSError as error:  # urllib3's connection errors are OSErrors
        raise ApiError(0, "", f"{method} {path}: {error}") from None
    if not 200 <= response.status <= 299:
        raise _error(int(response.status), response.data)
    if not response.data:
        return {}
    answer = json.loads(response.data)
    return answer if isinstance(answer, dict) else {}


def get(api: client.ApiClient, resource: Resource, namespace: str, name: str) -> Obj | None:
    """The object, or None if it does not exist."""
    try:
        return request(api, "GET", resource.path(namespace, name))
    except ApiError as error:
        if error.status == 404:
            return None
        raise


def list_items(api: client.ApiClient, resource: Resource, namespace: str) -> list[Obj]:
    """Every object of ``resource`` in ``namespace``, with ``apiVersion`` and ``kind`` (a list
    answer leaves them out of its items)."""
    answer = request(api, "GET", resource.path(namespace))
    items = answer.get("items") or []
    return [{"apiVersion": resource.api_version, "kind": resource.kind, **i} for i in items]


def apply(api: client.ApiClient, obj: Mapping[str, Any]) -> Obj:
    """Server-side apply of ``obj`` as the ModelService reconciler's field manager, taking
    over fields others set (the ModelService is the source of truth for what it renders).
    Fields it applied before and no longer applies are removed."""
    resource = resource_of(obj)
    meta = obj["metadata"]
    return request(
        api,
        "PATCH",
        resource.path(meta["namespace"], meta["name"]),
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        body=dict(obj),
        content_type=_APPLY,
    )


def delete(api: client.ApiClient, obj: Mapping[str, Any]) -> None:
    """Delete ``obj`` if it is still the same object (its uid); gone already is fine."""
    meta = obj["metadata"]
    body = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": meta["uid"]},
        "propagationPolicy": "Background",
    }
    try:
        request(api, "DELETE", resource_of(obj).path(meta["namespace"], meta["name"]), body=body)
    except ApiError as error:
        if error.status != 404:
            raise


def set_owner_references(
    api: client.ApiClient, obj: Mapping[str, Any], references: Sequence[Mapping[str, Any]]
) -> None:
    """Replace ``obj``'s owner references, if nobody changed it since it was read."""
    meta = obj["metadata"]
    patch = {
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "ownerReferences": [dict(r) for r in references] or None,
        }
    }
    path = resource_of(obj).path(meta["namespace"], meta["name"])
    request(api, "PATCH", path, body=patch, content_type=_MERGE)


def patch_status(
    api: client.ApiClient, resource: Resource, namespace: str, name: str, status: Mapping[str, Any]
) -> Obj:
    """A merge patch of the status subresource (``None`` values remove fields)."""
    path = resource.path(namespace, name, "status")
    return request(api, "PATCH", path, body={"status": dict(status)}, content_type=_MERGE)


def create(
    api: client.ApiClient, resource: Resource, namespace: str, body: Mapping[str, Any]
) -> Obj:
    return request(api, "POST", resource.path(namespace), body=dict(body))
