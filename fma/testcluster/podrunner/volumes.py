"""The files a Pod's containers see under ``/var/run/secrets``: above all its ServiceAccount.

The ServiceAccount admission plugin adds to every Pod that automounts a token (the Pod's
``automountServiceAccountToken``, else its ServiceAccount's) a projected volume
``kube-api-access-*`` mounted at ``/var/run/secrets/kubernetes.io/serviceaccount``, made of a
``serviceAccountToken`` (``token``), the ``kube-root-ca.crt`` ConfigMap (``ca.crt``) and the
namespace (downward API). The runner materializes such volumes as a kubelet does: the token
comes from the TokenRequest API for the Pod's ServiceAccount, bound to the Pod (so it stops
working once the Pod is gone), the CA and namespace as the sources say. The files are written
to ``<pod dir>/volumes/<volume>/`` and bind-mounted read-only into the container's private
mount namespace.

Supported: ``projected`` (serviceAccountToken, configMap, secret, downwardAPI fieldRef
sources), ``configMap`` and ``secret`` volumes, mounted anywhere under ``/var/run/secrets``
(a private tmpfs there hides the host's own). Other volumes and mount paths are skipped and
logged: the processes share the host's file system.

The token is requested once per Pod: the apiserver extends tokens of the default 3607 s to a
year (``--service-account-extend-token-expiration``), so no refresh is needed in a test run.
"""

import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fma.testcluster.podrunner.env import ConfigError, Reader, field_value

_LOG = logging.getLogger(__name__)
SECRETS_ROOT: Final = "/var/run/secrets/"

TokenFn = Callable[[str, str, dict[str, Any]], str]
"""``(namespace, service account, TokenRequest spec) -> token``."""


@dataclass(frozen=True)
class VolumeSources:
    read_config_map: Reader
    read_secret: Reader
    request_token: TokenFn


def _items(
    data: Mapping[str, str], items: list[dict[str, Any]] | None, what: str
) -> dict[str, str]:
    if not items:
        return dict(data)
    files = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            raise ConfigError(f"couldn't find key {key} in {what}")
        files[str(item.get("path", key))] = data[key]
    return files


def _object(kind: str, ref: Mapping[str, Any], namespace: str, read: Reader) -> dict[str, str]:
    name = str(ref.get("name", ""))
    data = read(namespace, name)
    if data is None:
        if ref.get("optional"):
            return {}
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    return _items(data, ref.get("items"), f"{kind} {namespace}/{name}")


def volume_files(
    pod: Mapping[str, Any], volume: Mapping[str, Any], sources: VolumeSources
) -> dict[str, str] | None:
    """``{relative path: content}`` of ``volume``, or None for an unsupported kind.

    Raises ConfigError when a referenced object is missing (the kubelet then keeps the
    container in ``ContainerCreating`` and retries; so does the runner).
    """
    meta = pod.get("metadata") or {}
    namespace = str(meta.get("namespace", ""))
    if "configMap" in volume:
        return _object("ConfigMap", volume["configMap"], namespace, sources.read_config_map)
    if "secret" in volume:
        ref = {**volume["secret"], "name": volume["secret"].get("secretName", "")}
        return _object("Secret", ref, namespace, sources.read_secret)
    if "projected" not in volume:
        return None
    files: dict[str, str] = {}
    for source in volume["projected"].get("sources") or []:
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"]
            spec: dict[str, Any] = {
                "expirationSeconds": int(sat.get("expirationSeconds") or 3607),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                },
            }
            if sat.get("audience"):
                spec["audiences"] = [sat["audience"]]
            account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
            files[str(sat.get("path", "token"))] = sources.request_token(namespace, account, spec)
        elif "configMap" in source:
            files |= _object("ConfigMap", source["configMap"], namespace, sources.read_config_map)
        elif "secret" in source:
            files |= _object("Secret", source["secret"], namespace, sources.read_secret)
        elif "downwardAPI" in source:
            for item in source["downwardAPI"].get("items") or []:
                if "fieldRef" in item:
                    path = str(item["fieldRef"].get("fieldPath", ""))
                    files[str(item["path"])] = field_value(pod, path)
    return files


def write_files(directory: Path, files: Mapping[str, str]) -> None:
    """Write ``files`` under ``directory`` atomically each (0644, like ``defaultMode``)."""
    for relative, content in files.items():
        target = (directory / relative).resolve()
        if directory.resolve() not in target.parents:
            raise ConfigError(f"volume path {relative!r} leaves its volume")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(content)
        tmp.chmod(0o644)
        tmp.replace(target)


def decode_secret(data: Mapping[str, str] | None) -> dict[str, str] | None:
    """A Secret's base64 ``data`` as text (what the files and variables hold)."""
    if data is None:
        return None
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}


def binds(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_dir: Path,
    sources: VolumeSources,
    materialized: dict[str, Path],
) -> list[tuple[Path, str]]:
    """The ``(host dir, mount path)`` bind mounts of ``container``; volumes are written once
    per Pod (``materialized`` remembers them). Raises ConfigError."""
    volumes = {str(v.get("name")): v for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts: list[tuple[Path, str]] = []
    for mount in container.get("volumeMounts") or []:
        name, path = str(mount.get("name")), str(mount.get("mountPath", ""))
        volume = volumes.get(name)
        if volume is None:
            continue
        if not path.startswith(SECRETS_ROOT) or mount.get("subPath") or ":" in path:
            _LOG.info("skipping volume %s at %s: only /var/run/secrets/... is mounted", name, path)
            continue
        if name not in materialized:
            files = volume_files(pod, volume, sources)
            if files is None:
                _LOG.info("skipping volume %s: unsupported kind", name)
                continue
            directory = pod_dir / "volumes" / name
            directory.mkdir(parents=True, exist_ok=True)
            write_files(directory, files)
            materialized[name] = directory
        mounts.append((materialized[name], path.rstrip("/")))
    return mounts
