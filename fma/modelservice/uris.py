"""Model URIs: where the weights come from, and the volume, mount and env that bring them in.

- ``hf://<repo-id>/<model-id>``: downloaded by vLLM into an ``emptyDir`` (``sizeLimit`` from
  ``modelArtifacts.size``); mounted containers get ``HF_TOKEN`` (from the secret named by
  ``authSecretName``, when given) and ``HF_HOME=/model-cache``.
- ``pvc://<claim>[/<path>]``: the claim, read-only; ``ModelPath`` is the path inside it.
- ``oci://<image reference>``: an image volume (Kubernetes ``volumes[].image``), read-only.

Schemes are matched exactly, as upstream does (``HF://`` is unknown). A URI that cannot work
is an error here; upstream logs it and renders objects the API server rejects.
"""

import re
from dataclasses import dataclass, field
from typing import Any, Final

from fma.api.modelservice import ModelArtifacts
from fma.modelservice.errors import RenderError

MODEL_VOLUME: Final = "model-storage"
MODEL_MOUNT_PATH: Final = "/model-cache"
ENV_HF_TOKEN: Final = "HF_TOKEN"  # noqa: S105 (the variable's name, not a secret)
ENV_HF_HOME: Final = "HF_HOME"
_FIELD: Final = "spec.modelArtifacts.uri"
_DNS_SUBDOMAIN: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


@dataclass(frozen=True)
class ModelSource:
    """What a model URI means for the Pods that serve it."""

    scheme: str
    hf_model_name: str
    model_path: str
    mounted_model_path: str
    volume: dict[str, Any]
    mount: dict[str, Any]
    env: list[dict[str, Any]] = field(default_factory=list)


def _bad(message: str) -> RenderError:
    return RenderError("modelservice", _FIELD, message)


def _hf(rest: str, artifacts: ModelArtifacts) -> ModelSource:
    parts = rest.split("/")
    if len(parts) != 2 or not all(parts):
        raise _bad(f"hf://{rest}: expected hf://<repo-id>/<model-id>")
    empty_dir: dict[str, Any] = {} if artifacts.size is None else {"sizeLimit": artifacts.size}
    env: list[dict[str, Any]] = []
    if artifacts.auth_secret_name:
        secret = {"name": artifacts.auth_secret_name, "key": ENV_HF_TOKEN}
        env.append({"name": ENV_HF_TOKEN, "valueFrom": {"secretKeyRef": secret}})
    env.append({"name": ENV_HF_HOME, "value": MODEL_MOUNT_PATH})
    return ModelSource(
        scheme="hf",
        hf_model_name=rest,
        model_path=rest,
        mounted_model_path=MODEL_MOUNT_PATH,
        volume={"name": MODEL_VOLUME, "emptyDir": empty_dir},
        mount={"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH},
        env=env,
    )


def _pvc(rest: str) -> ModelSource:
    claim, _, path = rest.partition("/")
    if not _DNS_SUBDOMAIN.match(claim) or len(claim) > 253:
        raise _bad(f"pvc://{rest}: {claim!r} is not a PersistentVolumeClaim name")
    path = path.strip("/")
    return ModelSource(
        scheme="pvc",
        hf_model_name="",
        model_path=path,
        mounted_model_path=f"{MODEL_MOUNT_PATH}/{path}" if path else MODEL_MOUNT_PATH,
        volume={
            "name": MODEL_VOLUME,
            "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
        },
        mount={"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH, "readOnly": True},
    )


def _oci(rest: str) -> ModelSource:
    if not rest or any(c.isspace() for c in rest) or rest.startswith("/"):
        raise _bad(f"oci://{rest}: expected oci://<registry>/<repository>[:<tag>|@<digest>]")
    return ModelSource(
        scheme="oci",
        hf_model_name="",
        model_path="",
        mounted_model_path=MODEL_MOUNT_PATH,
        volume={"name": MODEL_VOLUME, "image": {"reference": rest, "pullPolicy": "IfNotPresent"}},
        mount={"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH, "readOnly": True},
    )


def model_source(artifacts: ModelArtifacts) -> ModelSource:
    """The volume, mount, env and template paths of ``artifacts.uri``; RenderError if bad."""
    uri = artifacts.uri
    scheme, separator, rest = uri.partition("://")
    if separator and scheme == "hf":
        return _hf(rest, artifacts)
    if separator and scheme == "pvc":
        return _pvc(rest)
    if separator and scheme == "oci":
        return _oci(rest)
    raise _bad(f"{uri!r}: unsupported; use hf://, pvc:// or oci:// (lower case)")
