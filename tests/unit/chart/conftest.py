"""Rendering the chart with the helm the test control plane is built with.

``helm`` is one of the binaries ``fma testcluster build`` makes (``make unit`` builds them
first). Without it these tests are skipped, saying so, unless ``FMA_REQUIRE_HELM=1`` (as
``make unit`` sets): then a missing helm fails them, so that they cannot pass by skipping.
"""

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from fma.testcluster.paths import testbin_dir

CHART = Path(__file__).resolve().parents[3] / "charts" / "fma"
RELEASE = "fma"
NAMESPACE = "fma-system"

Helm = Callable[..., subprocess.CompletedProcess[str]]
Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = testbin_dir() / "helm"
    if not binary.is_file():
        why = f"no helm at {binary}: `fma testcluster build` makes it"
        if os.environ.get("FMA_REQUIRE_HELM") == "1":
            pytest.fail(why)
        pytest.skip(why)
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        # Keep helm's repository cache and config out of the user's home.
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), *args], capture_output=True, text=True, env=env, timeout=60
        )

    return run


@pytest.fixture(scope="session")
def template(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """``helm template`` of the chart with ``values``: its text (the test fails on an error)."""
    directory = tmp_path_factory.mktemp("values")

    def render(
        values: Mapping[str, Any] | None = None,
        *,
        release: str = RELEASE,
        namespace: str = NAMESPACE,
    ) -> str:
        args = ["template", release, str(CHART), "--namespace", namespace]
        if values:
            path = directory / f"values-{len(list(directory.iterdir()))}.yaml"
            path.write_text(yaml.safe_dump(dict(values)))
            args += ["--values", str(path)]
        done = helm(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return render


@pytest.fixture(scope="session")
def render(template: Callable[..., str]) -> Render:
    """The chart's objects with ``values``, parsed."""

    def objects(values: Mapping[str, Any] | None = None, **where: str) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(template(values, **where)) if doc]

    return objects


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found
