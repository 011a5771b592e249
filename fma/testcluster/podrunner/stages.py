"""KWOK pod stages that leave the pod runner's Pods alone (pure, no I/O).

KWOK v0.7 plays "stages" on the Pods of the nodes it manages; without any Pod stage in its
configuration it uses its built-in "fast" set (``kustomize/stage/pod/fast`` in the KWOK
repository): ``pod-ready`` (Running, Ready, a pod IP), ``pod-complete`` (Job Pods finish)
and ``pod-delete`` (a deleted Pod is removed at once). These are those three stages,
unchanged but for one more selector expression each: the Pod must have no container of the
project's image. The runner plays kubelet for exactly the Pods this excludes, so KWOK never
writes their status and never removes them before their processes have stopped.

Node stages are not given, so KWOK keeps its default node stages (heartbeats, Ready).
"""

from typing import Any, Final

from fma.testcluster.podrunner.images import IMAGE_PATTERN

STAGE_API_VERSION: Final = "kwok.x-k8s.io/v1alpha1"

RUNS_PROJECT_IMAGE: Final = (
    "[(.spec.initContainers // [])[], (.spec.containers // [])[]"
    f' | (.image // "") | test("{IMAGE_PATTERN}")] | any'
)
"""A jq expression: ``true`` when some container of the Pod uses the project's image."""

_NOT_THE_RUNNERS: Final = {
    "jq": {"key": RUNS_PROJECT_IMAGE, "operator": "NotIn", "values": ["true"]}
}

_READY_STATUS: Final = """\
{{ $now := Now }}

conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}

containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}

initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  {{ if eq .restartPolicy "Always" }}
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
  {{ else }}
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
  {{ end }}
{{ end }}

hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""

_COMPLETE_STATUS: Final = """\
{{ $now := Now }}
{{ $root := . }}
containerStatuses:
{{ range $index, $item := .spec.containers }}
{{ $origin := index $root.status.containerStatuses $index }}
- image: {{ $item.image | Quote }}
  name: {{ $item.name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""


def _stage(name: str, expressions: list[dict[str, Any]], next_: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": STAGE_API_VERSION,
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [*expressions, _NOT_THE_RUNNERS]},
            "next": next_,
        },
    }


def _key(key: str, operator: str, *values: str) -> dict[str, Any]:
    requirement: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        requirement["values"] = list(values)
    return {"jq": requirement}


def pod_stages() -> list[dict[str, Any]]:
    """The three fast Pod stages of KWOK v0.7, each excluding the runner's Pods."""
    not_deleted = _key(".metadata.deletionTimestamp", "DoesNotExist")
    return [
        _stage(
            "pod-ready",
            [not_deleted, _key(".status.podIP", "DoesNotExist")],
            {"statusTemplate": _READY_STATUS},
        ),
        _stage(
            "pod-complete",
            [
                not_deleted,
                _key(".status.phase", "In", "Running"),
                _key(".metadata.ownerReferences.[].kind", "In", "Job"),
            ],
            {"statusTemplate": _COMPLETE_STATUS},
        ),
        _stage(
            "pod-delete",
            [_key(".metadata.deletionTimestamp", "Exists")],
            {"finalizers": {"empty": True}, "delete": True},
        ),
    ]
