"""``helm template`` of the main value combinations against checked-in snapshots, so that any
change to what the chart renders is seen in review.

Refresh them after an intended change with ``make chart-snapshots`` (it runs this file with
``FMA_UPDATE_SNAPSHOTS=1``) and read the diff.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("FMA_UPDATE_SNAPSHOTS") == "1"

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "bare": {
        "admissionPolicies": {"enabled": False},
        "launcher": {"serviceAccount": {"create": False, "name": "fma-launcher"}},
        "controller": {"leaderElection": {"enabled": False, "leaseName": "fma-controller"}},
        "launcherPopulator": {
            "enabled": False,
            "replicaCount": 1,
            "takeoverDelaySeconds": 10,
        },
    },
    "upstream": {  # what upstream's own end-to-end scripts and the benchmark set
        "global": {
            "imageRegistry": "ghcr.io/llm-d-fma",
            "imageTag": "dev",
            "nodeViewClusterRole": "node-viewer",
            "local": True,
        },
        "dualPodsController": {"enabled": True, "sleeperLimit": 1, "debugAcceleratorMemory": False},
        "launcherPopulator": {
            "enabled": True,
            "pullPolicy": "IfNotPresent",
            "replicaCount": 1,
            "resources": {
                "limits": {"cpu": 2, "memory": "2Gi"},
                "requests": {"cpu": "100m", "memory": "128Mi"},
            },
            "takeoverDelaySeconds": 10,
        },
    },
    "everything": {
        "image": {"repository": "registry.example.com/llm-d-fma/fma", "tag": "dev"},
        "imagePullSecrets": [{"name": "registry-login"}],
        "controller": {
            "replicas": 2,
            "leaderElection": {"enabled": True, "leaseName": "fma-prod"},
            "logLevel": "debug",
            "extraArgs": ["--eviction=cost", "--gpu-memory=40Gi"],
            "podAnnotations": {"example.com/team": "serving"},
            "podLabels": {"team": "serving"},
            "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "system-cluster-critical",
        },
        "gpuMap": {"gpu-node-0": {"GPU-0": 0, "GPU-1": 1}},
        "monitoring": {"podMonitors": {"enabled": True, "interval": "15s", "labels": {"a": "b"}}},
        # A certificate of the user's (a generated one would differ at every rendering).
        "placement": {
            "enabled": True,
            "weight": 80,
            "tls": {"secretName": "placement-cert", "caBundle": "Q0EgUEVN"},
        },
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_matches_its_snapshot(template: Callable[..., str], case: str) -> None:
    rendered = template(CASES[case])
    snapshot = SNAPSHOTS / f"{case}.yaml"
    if UPDATE:
        snapshot.write_text(rendered)
    assert snapshot.is_file(), f"no snapshot {snapshot}: run `make chart-snapshots`"
    assert rendered == snapshot.read_text(), (
        f"the chart renders {case} differently from {snapshot}: if intended, "
        "run `make chart-snapshots` and review the diff"
    )


def test_every_snapshot_has_its_case() -> None:
    assert {p.stem for p in SNAPSHOTS.glob("*.yaml")} == set(CASES)
