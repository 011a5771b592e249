"""The launcher's wire protocol: request and response models and the paths they travel on.

This module is the document of record for the launcher's HTTP API (upstream's
"Multi-Instance vLLM Management API" v2, docs/launcher.md, with its quirks fixed). It holds no
behaviour beyond validation, so the service, its client and its tests share one definition.

Semantics shared by every endpoint:

- An *instance* is one engine process (real vLLM or the stub) started from a ``VllmConfig``.
  Its id is a client-chosen name (``PUT``) or a fresh uuid4 (``POST``).
- ``revision`` is one counter per launcher process; every create, every detected exit and
  every delete increments it by one and stamps the new value onto the instance. Revisions
  are not comparable across launcher restarts: a watch resumed with a revision this launcher
  never issued gets 410 Gone, and the client re-lists.
- Errors carry ``{"detail": ...}``: 404 unknown instance, 409 duplicate id (and only that),
  413 request body too large, 422 invalid input (including an unknown GPU UUID and options
  the engine's own argument parser rejects), 400 malformed ``Range``, 410 watch position
  gone, 503 instance or watcher limit reached, 500 only when the operating system refuses
  to start a process.
"""

import re
import shlex
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

# --- Paths ---------------------------------------------------------------------------------
ROOT_PATH: Final = "/"
HEALTH_PATH: Final = "/health"
INSTANCES_PATH: Final = "/v2/vllm/instances"
WATCH_PATH: Final = INSTANCES_PATH + "/watch"
INSTANCE_PATH: Final = INSTANCES_PATH + "/{instance_id}"
INSTANCE_LOG_PATH: Final = INSTANCE_PATH + "/log"
METRICS_PATH: Final = "/metrics"
"""Prometheus text: every instance by ``instance_id`` (:mod:`fma.launcher.metrics`)."""

NDJSON_MEDIA_TYPE: Final = "application/x-ndjson"
LOG_MEDIA_TYPE: Final = "application/octet-stream"

# --- Limits (every input is bounded) ---------------------------------------------------------
OPTION_COUNT_MAX: Final = 512
OPTION_CHARS_MAX: Final = 8192
OPTIONS_STRING_CHARS_MAX: Final = 65536
GPU_COUNT_MAX: Final = 64
GPU_UUID_CHARS_MAX: Final = 128
ENV_VAR_COUNT_MAX: Final = 256
ENV_VALUE_CHARS_MAX: Final = 32768
ANNOTATION_COUNT_MAX: Final = 64
ANNOTATION_KEY_CHARS_MAX: Final = 253
ANNOTATION_VALUE_CHARS_MAX: Final = 8192
INSTANCE_ID_CHARS_MAX: Final = 128
"""Ids name log files and path segments; upstream's are 45 characters, uuid4s 36."""
REQUEST_BODY_BYTES_MAX: Final = 1024 * 1024
LOG_CHUNK_BYTES_MAX: Final = 1024 * 1024
"""At most this many log bytes per response; page on with ``Range``."""
WATCH_BUFFER_EVENTS_MAX: Final = 1000
"""Watch events kept for resumption; an older ``since`` gets 410 Gone."""

INSTANCE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""Ids are path segments and label-value-like: upstream's ``I<base64url>i`` and uuid4 fit."""
RESERVED_INSTANCE_IDS: Final = frozenset({"watch"})
"""An instance named ``watch`` could never be read back: the path is the watch stream."""
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
GPU_UUID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"

_ENV_NAME_RE: Final = re.compile(ENV_NAME_PATTERN)


def _no_nul(value: str) -> str:
    # A NUL cannot cross execve or an environment block; reject it at the edge.
    if "\0" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _split_options(value: object) -> object:
    """Accept upstream's string form, split with shell quoting rules (never run by a shell)."""
    if isinstance(value, str):
        if len(value) > OPTIONS_STRING_CHARS_MAX:
            raise ValueError(f"options string longer than {OPTIONS_STRING_CHARS_MAX} characters")
        try:
            return shlex.split(value)
        except ValueError as error:
            raise ValueError(f"options string cannot be split: {error}") from error
    return value


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a GPU UUID")
    return values


def _valid_env(env: dict[str, str]) -> dict[str, str]:
    for name in env:
        if not _ENV_NAME_RE.fullmatch(name) or len(name) > 256:
            raise ValueError(f"invalid environment variable name {name!r}")
    return env


Option = Annotated[str, StringConstraints(max_length=OPTION_CHARS_MAX), AfterValidator(_no_nul)]
GpuUuid = Annotated[
    str,
    StringConstraints(min_length=1, max_length=GPU_UUID_CHARS_MAX, pattern=GPU_UUID_PATTERN),
]
EnvValue = Annotated[
    str, StringConstraints(max_length=ENV_VALUE_CHARS_MAX), AfterValidator(_no_nul)
]
AnnotationKey = Annotated[str, StringConstraints(min_length=1, max_length=ANNOTATION_KEY_CHARS_MAX)]
AnnotationValue = Annotated[str, StringConstraints(max_length=ANNOTATION_VALUE_CHARS_MAX)]
InstanceId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=INSTANCE_ID_CHARS_MAX, pattern=INSTANCE_ID_PATTERN),
]


class VllmConfig(BaseModel):
    """What to run: the body of ``POST`` and ``PUT``.

    - ``options``: the engine's command-line arguments, as a list (preferred) or as one string
      split with shell-like quoting; never run by a shell. The instance serves on the
      ``--port`` among them.
    - ``gpu_uuids``: the GPUs to use; the launcher translates them to ``CUDA_VISIBLE_DEVICES``
      indices (in the order given), overriding any value in ``env_vars``. Absent: the variable
      is left as the launcher's own environment has it.
    - ``env_vars``: extra environment of the engine process.
    - ``annotations``: opaque to the launcher, returned with the state.
    """

    model_config = ConfigDict(extra="forbid")

    options: Annotated[
        list[Option], Field(max_length=OPTION_COUNT_MAX), BeforeValidator(_split_options)
    ]
    gpu_uuids: (
        Annotated[list[GpuUuid], Field(max_length=GPU_COUNT_MAX), AfterValidator(_unique)] | None
    ) = None
    env_vars: (
        Annotated[
            dict[str, EnvValue], Field(max_length=ENV_VAR_COUNT_MAX), AfterValidator(_valid_env)
        ]
        | None
    ) = None
    annotations: (
        Annotated[dict[AnnotationKey, AnnotationValue], Field(max_length=ANNOTATION_COUNT_MAX)]
        | None
    ) = None


class InstanceStatus(StrEnum):
    """``running``: the engine process is alive (it may still be loading; ask its ``/health``).
    ``stopped``: the process exited (crash, or stopped by DELETE); kept until DELETEd."""

    RUNNING = "running"
    STOPPED = "stopped"


class InstanceState(BaseModel):
    """One instance as the launcher reports it. Null fields are omitted on the wire.

    ``env_vars`` is the environment the launcher added, including the computed
    ``CUDA_VISIBLE_DEVICES``. ``pid`` is the engine's process id (the leader of its own
    process group). ``exit_code`` is set once stopped: the exit status, or minus the number
    of the signal that ended it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_id: str
    status: InstanceStatus
    revision: int
    options: list[str]
    gpu_uuids: list[str] | None = None
    env_vars: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    pid: int | None = None
    exit_code: int | None = None


class InstanceList(BaseModel):
    """``GET /v2/vllm/instances`` (``detail=true``, the default)."""

    revision: int
    total_instances: int
    running_instances: int
    instances: list[InstanceState]


class InstanceIdList(BaseModel):
    """``GET /v2/vllm/instances?detail=false``."""

    revision: int
    instance_ids: list[str]
    count: int


class DeleteAllResult(BaseModel):
    """``DELETE /v2/vllm/instances``: every instance stopped and removed."""

    status: Literal["all_stopped"] = "all_stopped"
    stopped_instances: list[str]
    total_stopped: int


class EventType(StrEnum):
    """Kinds of watch event: an instance was created, its process exited, or it was deleted."""

    CREATED = "CREATED"
    STOPPED = "STOPPED"
    DELETED = "DELETED"


class WatchEvent(BaseModel):
    """One line of the watch stream; ``object.revision`` is the event's position."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    object: InstanceState


class HealthResponse(BaseModel):
    """``GET /health``."""

    status: Literal["OK"] = "OK"


class ServiceInfo(BaseModel):
    """``GET /``."""

    name: str
    version: str
    engine: str
    endpoints: list[str]


class ErrorResponse(BaseModel):
    """Body of every non-validation error."""

    detail: str


def options_text(options: list[str]) -> str:
    """The options as one shell-quoted string, for logs and messages."""
    return shlex.join(options)
