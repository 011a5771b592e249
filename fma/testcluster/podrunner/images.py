"""Which Pods the pod runner runs, and what command line a container of the image means.

The project's image is ``ghcr.io/llm-d-fma/fma`` and its entrypoint is ``fma``. The runner
accepts the repository under any registry or mirror as long as its path ends in
``llm-d-fma/fma`` (``ghcr.io/llm-d-fma/fma:v1``, ``localhost:5000/llm-d-fma/fma``,
``llm-d-fma/fma@sha256:...``), with any tag and/or digest. A bare ``.../fma`` is *not*
accepted: ``docker.io/someone/fma`` is somebody else's image.

The image's ``vllm-cpu`` tag (``ghcr.io/llm-d-fma/fma:vllm-cpu``) is the build with vLLM for
the CPU in it: its ``fma`` is the one of the cached vLLM environment
(:mod:`fma.launcher.vllm_env`), and it is present only once that environment is built, as an
image is present on a node only once pulled. Every other tag runs the runner's own ``fma``.

The same rule exists twice: as :data:`IMAGE_PATTERN` here and inside the KWOK stage
selectors (:mod:`~fma.testcluster.podrunner.stages`), which use the very same regular
expression (RE2 and Python agree on it), so a Pod is either run here or faked by KWOK, never
both and never neither.
"""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from fma.launcher import vllm_env
from fma.testcluster.podrunner.expansion import expand

IMAGE_REPOSITORY: Final = "ghcr.io/llm-d-fma/fma"
ENTRYPOINT: Final = "fma"
VLLM_CPU_TAG: Final = "vllm-cpu"

IMAGE_PATTERN: Final = (
    r"^([A-Za-z0-9][A-Za-z0-9.:_-]*/)*llm-d-fma/fma"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[A-Za-z0-9_+.-]+:[A-Fa-f0-9]{32,})?$"
)
"""Registry and path prefix (optional), ``llm-d-fma/fma``, optional tag, optional digest."""

_IMAGE_RE: Final = re.compile(IMAGE_PATTERN)


class NotRunnable(ValueError):
    """A container the runner will not start; ``reason`` and the message go to its status."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def is_project_image(image: str) -> bool:
    """True if ``image`` names the project's image (see the module docstring)."""
    return bool(_IMAGE_RE.match(image))


def image_tag(image: str) -> str | None:
    """The tag of an image reference (``None`` without one; a digest is not a tag)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def image_program(image: str, default: Path) -> Path:
    """The ``fma`` program a container of ``image`` runs: the vLLM environment's for the
    ``vllm-cpu`` tag, else ``default``. Raises :class:`NotRunnable` (``ErrImageNeverPull``)
    when the vLLM environment is not built."""
    if image_tag(image) != VLLM_CPU_TAG:
        return default
    if not vllm_env.is_ready():
        raise NotRunnable(
            "ErrImageNeverPull",
            f"image {image!r} is not present: build the vLLM environment with "
            "`python -m fma.launcher.vllm_env ensure`",
        )
    return vllm_env.venv_python().parent / ENTRYPOINT


def all_containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Pod's init containers and containers, in that order."""
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def is_runner_pod(pod: Mapping[str, Any], nodes: frozenset[str]) -> bool:
    """True if the runner owns ``pod``: bound to one of ``nodes`` and with at least one
    container (init or regular) of the project's image.

    A Pod mixing images is still the runner's: its other containers then wait with reason
    ``ErrImageNeverPull`` (the runner has no other image), which is clearer than a Pod whose
    processes silently never run.
    """
    node = (pod.get("spec") or {}).get("nodeName")
    if node not in nodes:
        return False
    return any(is_project_image(str(c.get("image", ""))) for c in all_containers(pod))


def container_argv(container: Mapping[str, Any], fma: Path, env: Mapping[str, str]) -> list[str]:
    """The argv that runs ``container``, with ``$(VAR)`` references expanded from ``env``.

    As the container runtime would: without ``command`` the image's entrypoint (``fma``)
    gets ``args``; with a ``command`` it must itself be ``fma`` (or a path ending in
    ``/fma``), since the image has nothing else worth running. Raises :class:`NotRunnable`
    for another image or command; the runner never passes anything to a shell.
    """
    image = str(container.get("image", ""))
    if not is_project_image(image):
        raise NotRunnable(
            "ErrImageNeverPull",
            f"image {image!r} is not present: the pod runner has only {IMAGE_REPOSITORY}",
        )
    command = [expand(str(part), env) for part in container.get("command") or []]
    args = [expand(str(part), env) for part in container.get("args") or []]
    if not command:
        return [str(fma), *args]
    head = command[0]
    if head != ENTRYPOINT and not (head.startswith("/") and head.endswith("/" + ENTRYPOINT)):
        raise NotRunnable(
            "StartError",
            f"exec: {head!r}: not runnable here: the pod runner runs only the image's "
            f"{ENTRYPOINT!r} entrypoint (command {ENTRYPOINT!r} or args alone)",
        )
    return [str(fma), *command[1:], *args]
