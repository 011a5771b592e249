"""The few API calls the runner makes, as plain JSON in and out (blocking; run in threads).

Objects are read with ``_preload_content=False`` and parsed as JSON, so the runner works on
the API's own field names (``podIP``, ``fieldRef``), as a kubelet does, rather than on the
client's generated models. The runner uses the cluster's admin kubeconfig: a real kubelet
has a node identity limited by the ``Node`` authorizer, which does not change what the Pods
see.
"""

import json
import logging
from typing import Any

from fma.api.constants import CONFIGMAP_GPU_MAP
from fma.testcluster.podrunner.volumes import decode_secret

_LOG = logging.getLogger(__name__)


def _status(error: Exception) -> int | None:
    return getattr(error, "status", None)


class Kube:
    """Blocking API calls on one ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: Any, gpu_map_namespace: str) -> None:
        from kubernetes import client

        # Any: the calls pass plain JSON bodies and read raw responses, not the models.
        self.core: Any = client.CoreV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self._gpu_map_namespace = gpu_map_namespace

    @staticmethod
    def _json(response: Any) -> Any:
        return json.loads(response.data)

    def _read(self, call: Any, *args: Any) -> dict[str, Any] | None:
        try:
            return dict(self._json(call(*args, _preload_content=False)))
        except Exception as error:
            if _status(error) == 404:
                return None
            raise

    def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self._read(self.core.read_namespaced_config_map, name, namespace)
        return None if found is None else dict(found.get("data") or {})

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self._read(self.core.read_namespaced_secret, name, namespace)
        return None if found is None else decode_secret(found.get("data") or {})

    def read_node(self, name: str) -> dict[str, Any] | None:
        return self._read(self.core.read_node, name)

    def gpu_map(self) -> dict[str, dict[str, int]]:
        """``{node: {uuid: index}}`` from the ``gpu-map`` ConfigMap (empty if missing)."""
        data = self.read_config_map(self._gpu_map_namespace, CONFIGMAP_GPU_MAP) or {}
        return {node: dict(json.loads(text)) for node, text in data.items()}

    def request_token(self, namespace: str, account: str, spec: dict[str, Any]) -> str:
        """A bound ServiceAccount token from the TokenRequest API."""
        response = self.core.create_namespaced_service_account_token(
            account, namespace, {"spec": spec}, _preload_content=False
        )
        return str(self._json(response)["status"]["token"])

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        """Strategic-merge-patch the status subresource; False if the Pod is gone."""
        try:
            self.core.patch_namespaced_pod_status(
                name,
                namespace,
                {"status": status},
                _content_type="application/strategic-merge-patch+json",
                _preload_content=False,
            )
        except Exception as error:
            if _status(error) == 404:
                return False
            raise
        return True

    def finish_deletion(self, namespace: str, name: str, uid: str) -> None:
        """Delete with grace 0 and a UID precondition, as the kubelet ends a deletion."""
        try:
            self.core.delete_namespaced_pod(
                name,
                namespace,
                grace_period_seconds=0,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
                _preload_content=False,
            )
        except Exception as error:
            if _status(error) not in (404, 409):
                raise

    def apply_custom(self, obj: dict[str, Any], plural: str) -> None:
        """Server-side apply a namespaced custom object (created, or made to match)."""
        group, version = str(obj["apiVersion"]).split("/")
        meta = obj["metadata"]
        self.custom.patch_namespaced_custom_object(
            group,
            version,
            meta["namespace"],
            plural,
            meta["name"],
            obj,
            field_manager="fma-pod-runner",
            force=True,
            _content_type="application/apply-patch+yaml",
            _preload_content=False,
        )

    def delete_custom(self, api_version: str, plural: str, namespace: str, name: str) -> None:
        """Delete a namespaced custom object; one already gone is fine."""
        group, version = api_version.split("/")
        try:
            self.custom.delete_namespaced_custom_object(
                group, version, namespace, plural, name, _preload_content=False
            )
        except Exception as error:
            if _status(error) != 404:
                raise
