"""The merge rules, one by one: the BaseConfig object is the base, the overlay wins."""

from typing import Any

from fma.modelservice.merge import is_empty, merge, replace_lists, route_lists, workload_lists


def _pod(**spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


def _containers(merged: dict[str, Any], key: str = "containers") -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = merged["spec"]["template"]["spec"][key]
    return result


def test_the_overlay_wins_where_it_is_not_empty() -> None:
    base = {"a": 1, "b": "base", "c": "keep", "d": {"x": 1}}
    overlay = {"a": 2, "b": "", "c": None, "d": {}, "e": "new"}
    assert merge(base, overlay, workload_lists) == {
        "a": 2,
        "b": "base",
        "c": "keep",
        "d": {"x": 1},
        "e": "new",
    }


def test_explicit_zero_and_false_win() -> None:
    assert merge({"replicas": 3, "on": True}, {"replicas": 0, "on": False}, workload_lists) == {
        "replicas": 0,
        "on": False,
    }
    assert [is_empty(v) for v in (None, "", [], {}, 0, False)] == [True] * 4 + [False] * 2


def test_inputs_are_not_changed() -> None:
    base = {"labels": {"a": "1"}, "list": [1]}
    overlay = {"labels": {"b": "2"}, "list": [2]}
    merge(base, overlay, workload_lists)
    assert base == {"labels": {"a": "1"}, "list": [1]}
    assert overlay == {"labels": {"b": "2"}, "list": [2]}


def test_maps_are_combined_key_by_key() -> None:
    base = {"labels": {"app": "x", "shared": "base"}}
    overlay = {"labels": {"shared": "ours", "llm-d.ai/role": "decode"}}
    assert merge(base, overlay, workload_lists)["labels"] == {
        "app": "x",
        "shared": "ours",
        "llm-d.ai/role": "decode",
    }


def test_containers_are_merged_by_name_keeping_the_base_order() -> None:
    base = _pod(containers=[{"name": "llm", "image": "base"}, {"name": "proxy", "image": "p"}])
    overlay = _pod(
        containers=[{"name": "sidecar", "image": "nginx"}, {"name": "llm", "image": "ours"}]
    )
    assert _containers(merge(base, overlay, workload_lists)) == [
        {"name": "llm", "image": "ours"},
        {"name": "proxy", "image": "p"},
        {"name": "sidecar", "image": "nginx"},
    ]


def test_init_containers_follow_the_same_rule() -> None:
    base = _pod(initContainers=[{"name": "routing-proxy", "args": ["--port=8000"]}])
    overlay = _pod(initContainers=[{"name": "routing-proxy", "args": ["-v=6"]}, {"name": "x"}])
    assert _containers(merge(base, overlay, workload_lists), "initContainers") == [
        {"name": "routing-proxy", "args": ["-v=6", "--port=8000"]},
        {"name": "x"},
    ]


def test_modelservice_args_come_before_the_base_args() -> None:
    base = _pod(containers=[{"name": "vllm", "args": ["--port", "8000"]}])
    overlay = _pod(containers=[{"name": "vllm", "args": ["facebook/opt-125m"]}])
    merged = _containers(merge(base, overlay, workload_lists))[0]
    assert merged["args"] == ["facebook/opt-125m", "--port", "8000"]


def test_command_is_replaced_when_given_and_kept_otherwise() -> None:
    base = _pod(containers=[{"name": "vllm", "command": ["vllm", "serve"]}])
    replaced = merge(
        base, _pod(containers=[{"name": "vllm", "command": ["sleep"]}]), workload_lists
    )
    assert _containers(replaced)[0]["command"] == ["sleep"]
    kept = merge(base, _pod(containers=[{"name": "vllm", "command": []}]), workload_lists)
    assert _containers(kept)[0]["command"] == ["vllm", "serve"]


def test_env_is_merged_by_name_in_the_base_order() -> None:
    base = _pod(
        containers=[
            {
                "name": "epp",
                "env": [
                    {"name": "USE_STREAMING", "value": "true"},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                ],
            }
        ]
    )
    overlay = _pod(
        containers=[
            {
                "name": "epp",
                "env": [
                    {"name": "HF_TOKEN", "value": "hello"},
                    {"name": "USE_STREAMING", "value": "false"},
                    {"name": "POD_IP", "value": "1.2.3.4"},
                ],
            }
        ]
    )
    assert _containers(merge(base, overlay, workload_lists))[0]["env"] == [
        {"name": "USE_STREAMING", "value": "false"},
        # The overlay's entry replaces the base's whole: never value and valueFrom together.
        {"name": "POD_IP", "value": "1.2.3.4"},
        {"name": "HF_TOKEN", "value": "hello"},
    ]


def test_resources_are_merged_by_resource_name() -> None:
    base = _pod(
        containers=[{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 1, "cpu": "2"}}}]
    )
    overlay = _pod(containers=[{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 4}}}])
    assert _containers(merge(base, overlay, workload_lists))[0]["resources"] == {
        "limits": {"nvidia.com/gpu": 4, "cpu": "2"}
    }


def test_other_container_lists_are_appended_and_mounts_merged_by_path() -> None:
    base = _pod(
        containers=[
            {
                "name": "c",
                "ports": [{"containerPort": 8000}],
                "volumeMounts": [{"name": "model-storage", "mountPath": "/model-cache"}],
            }
        ]
    )
    overlay = _pod(
        containers=[
            {
                "name": "c",
                "ports": [{"containerPort": 9000}],
                "volumeMounts": [
                    {"name": "model-storage", "mountPath": "/model-cache", "readOnly": True},
                    {"name": "x", "mountPath": "/x"},
                ],
            }
        ]
    )
    merged = _containers(merge(base, overlay, workload_lists))[0]
    assert merged["ports"] == [{"containerPort": 8000}, {"containerPort": 9000}]
    assert merged["volumeMounts"] == [
        {"name": "model-storage", "mountPath": "/model-cache", "readOnly": True},
        {"name": "x", "mountPath": "/x"},
    ]


def test_volumes_are_merged_by_name() -> None:
    base = _pod(
        volumes=[
            {"name": "config", "configMap": {"name": "c"}},
            {"name": "model-storage", "emptyDir": {"sizeLimit": "20Gi"}},
        ]
    )
    same_type = merge(
        base, _pod(volumes=[{"name": "model-storage", "emptyDir": {}}]), workload_lists
    )
    assert same_type["spec"]["template"]["spec"]["volumes"] == [
        {"name": "config", "configMap": {"name": "c"}},
        {"name": "model-storage", "emptyDir": {"sizeLimit": "20Gi"}},
    ]
    claim = {"name": "model-storage", "persistentVolumeClaim": {"claimName": "p", "readOnly": True}}
    other_type = merge(base, _pod(volumes=[claim]), workload_lists)
    assert other_type["spec"]["template"]["spec"]["volumes"] == [
        {"name": "config", "configMap": {"name": "c"}},
        claim,
    ]


def test_required_node_affinity_terms_are_anded() -> None:
    def affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
        terms = [{"matchExpressions": [e]} for e in expressions]
        return {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
            }
        }

    zone_a = {"key": "zone", "operator": "In", "values": ["a"]}
    zone_b = {"key": "zone", "operator": "In", "values": ["b"]}
    gpu = {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["H100"]}
    merged = merge(affinity(zone_a, zone_b), affinity(gpu), workload_lists)
    terms = merged["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [{"matchExpressions": [zone_a, gpu]}, {"matchExpressions": [zone_b, gpu]}]
    assert merge({}, affinity(gpu), workload_lists) == affinity(gpu)


def test_http_route_references_are_merged_by_name() -> None:
    base = {
        "spec": {
            "parentRefs": [{"name": "inference-gateway-name", "port": 12345}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}],
        }
    }
    overlay = {
        "spec": {
            "parentRefs": [
                {"name": "inference-gateway-name", "port": 1112},
                {"name": "other-gateway"},
            ]
        }
    }
    merged = merge(base, overlay, route_lists)
    assert merged["spec"]["parentRefs"] == [
        {"name": "inference-gateway-name", "port": 1112},
        {"name": "other-gateway"},
    ]
    assert merged["spec"]["rules"] == base["spec"]["rules"]


def test_service_lists_are_replaced_and_selectors_combined() -> None:
    base = {"spec": {"selector": {"app.kubernetes.io/name": "x"}, "ports": [{"port": 80}]}}
    overlay = {"spec": {"selector": {"llm-d.ai/role": "decode"}, "ports": [{"port": 81}]}}
    assert merge(base, overlay, replace_lists) == {
        "spec": {
            "selector": {"app.kubernetes.io/name": "x", "llm-d.ai/role": "decode"},
            "ports": [{"port": 81}],
        }
    }
