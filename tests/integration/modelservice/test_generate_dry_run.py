"""``fma modelservice generate`` piped into ``kubectl apply --dry-run=server``, as the docs show.

Every sample of ours and upstream's must pass the API server's own validation (schemas of the
real CRDs, Kubernetes' built-in kinds, the ModelService's owner references once it exists),
and a rendering the server would reject must be rejected (the check can fail).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fma.testcluster.cluster import kubectl
from fma.testcluster.state import LocalCluster
from tests.unit.modelservice.helpers import REPO_SAMPLES, SHARED_SAMPLES, sample_files

pytestmark = pytest.mark.integration


def _samples() -> list[tuple[Path, str]]:
    directories = [REPO_SAMPLES, *([SHARED_SAMPLES] if SHARED_SAMPLES.is_dir() else [])]
    return [
        (d, p.name.removesuffix("-msvc.yaml"))
        for d in directories
        for p in sorted(d.glob("*-msvc.yaml"))
    ]


def generate(msvc: Path, base: Path, namespace: str) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fma",
            "modelservice",
            "generate",
            "-m",
            str(msvc),
            "-b",
            str(base),
            "--epp-cluster-role",
            "pod-read",
            "-n",
            namespace,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def dry_run(cluster: LocalCluster, manifests: str) -> subprocess.CompletedProcess[str]:
    return kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=manifests, check=False)


@pytest.mark.parametrize(("directory", "sample"), _samples(), ids=lambda v: str(v))
def test_the_server_accepts_every_sample(
    routing_crds: None, testcluster: LocalCluster, namespace: str, directory: Path, sample: str
) -> None:
    manifests = generate(*sample_files(directory, sample), namespace)
    objects = [d for d in yaml.safe_load_all(manifests) if d]
    proc = dry_run(testcluster, manifests)
    assert proc.returncode == 0, proc.stderr
    accepted = [line for line in proc.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(objects), proc.stdout


def test_a_bad_rendering_is_rejected(
    routing_crds: None, testcluster: LocalCluster, namespace: str
) -> None:
    manifests = generate(*sample_files(REPO_SAMPLES, "opt125m-pd"), namespace)
    objects: list[dict[str, Any]] = [d for d in yaml.safe_load_all(manifests) if d]
    pool = next(o for o in objects if o["kind"] == "InferencePool")
    pool["spec"]["targetPortNumber"] = 0  # the InferencePool CRD's minimum is 1
    proc = dry_run(testcluster, yaml.safe_dump_all(objects))
    assert proc.returncode != 0
    assert "targetPortNumber" in proc.stderr
