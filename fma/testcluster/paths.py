"""Where the test control plane keeps things outside the repository.

``FMA_CACHE`` (default ``~/.cache/fma``) is the root shared with the rest of the project's
one-time builds. Binaries are keyed by Kubernetes version, so bumping a pin in
:mod:`fma.testcluster.versions` builds into a fresh directory and never mixes versions.
"""

import os
from pathlib import Path

from fma.testcluster import versions


def cache_root() -> Path:
    """``$FMA_CACHE`` or ``~/.cache/fma``; not created here."""
    env = os.environ.get("FMA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fma"


def testbin_dir() -> Path:
    """``<cache>/testbin/<k8s-version>/``: the built binaries of the pinned versions."""
    return cache_root() / "testbin" / versions.KUBERNETES_VERSION


def build_root() -> Path:
    """``<cache>/testbin/build/``: parent of the temporary Go work directories."""
    return cache_root() / "testbin" / "build"


def current_pointer() -> Path:
    """The file naming the state directory of the cluster ``fma testcluster up`` started last."""
    return cache_root() / "testcluster" / "current"
