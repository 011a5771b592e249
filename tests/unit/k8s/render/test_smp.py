"""The strategic merge patch: each rule against a hand-written expected Pod."""

from typing import Any

import pytest

from fma.adapters.k8s.render.smp import PatchError, strategic_merge

Obj = dict[str, Any]


def pod(**spec: Any) -> Obj:
    return {"metadata": {"labels": {"app": "a", "tier": "t"}}, "spec": spec}


def test_maps_merge_recursively_and_null_deletes_a_key() -> None:
    original = pod(nodeSelector={"zone": "z1", "disk": "ssd"})
    patch = {
        "metadata": {"labels": {"app": None, "model": "m"}},
        "spec": {"nodeSelector": {"zone": "z2"}, "priority": 7},
    }
    assert strategic_merge(original, patch) == {
        "metadata": {"labels": {"tier": "t", "model": "m"}},
        "spec": {"nodeSelector": {"zone": "z2", "disk": "ssd"}, "priority": 7},
    }


def test_the_inputs_are_not_changed() -> None:
    original = pod(containers=[{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}]}])
    patch = {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "2"}]}]}}
    strategic_merge(original, patch)
    assert original["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert patch["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]


def test_containers_merge_by_name_and_env_by_name_and_new_items_follow() -> None:
    original = pod(
        containers=[
            {
                "name": "inference-server",
                "image": "stub",
                "command": ["requester"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            },
            {"name": "side", "image": "busybox"},
        ]
    )
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "inference-server",
                    "image": "vllm",
                    "command": ["vllm", "serve"],
                    "env": [
                        {"name": "C", "value": "3"},
                        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
                    ],
                },
                {"name": "extra", "image": "e"},
            ]
        }
    }
    assert strategic_merge(original, patch)["spec"]["containers"] == [
        {
            "name": "inference-server",
            "image": "vllm",
            "command": ["vllm", "serve"],
            "env": [
                {"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
                {"name": "B", "value": "2"},
                {"name": "C", "value": "3"},
            ],
        },
        {"name": "side", "image": "busybox"},
        {"name": "extra", "image": "e"},
    ]


def test_ports_merge_by_container_port_and_mounts_by_mount_path() -> None:
    original = pod(
        containers=[
            {
                "name": "c",
                "ports": [{"containerPort": 8080, "name": "probes"}],
                "volumeMounts": [{"name": "a", "mountPath": "/a"}],
            }
        ]
    )
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 8000}],
                    "volumeMounts": [{"name": "b", "mountPath": "/a", "readOnly": True}],
                }
            ]
        }
    }
    assert strategic_merge(original, patch)["spec"]["containers"] == [
        {
            "name": "c",
            "ports": [
                {"containerPort": 8080, "name": "probes", "protocol": "TCP"},
                {"containerPort": 8000},
            ],
            "volumeMounts": [{"name": "b", "mountPath": "/a", "readOnly": True}],
        }
    ]


def test_lists_without_a_merge_key_are_replaced() -> None:
    original = pod(
        tolerations=[{"key": "a", "operator": "Exists"}],
        containers=[{"name": "c", "args": ["--x"], "envFrom": [{"configMapRef": {"name": "m"}}]}],
    )
    patch = {
        "spec": {
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["--y"], "envFrom": []}],
        }
    }
    merged = strategic_merge(original, patch)
    assert merged["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert merged["spec"]["containers"] == [{"name": "c", "args": ["--y"], "envFrom": []}]


def test_patch_delete_removes_a_container_by_name() -> None:
    original = pod(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    patch = {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}
    assert strategic_merge(original, patch)["spec"]["containers"] == [{"name": "b", "image": "y"}]


def test_patch_delete_in_a_map_removes_the_key() -> None:
    original = pod(securityContext={"runAsUser": 1}, priority=1)
    patch = {"spec": {"securityContext": {"$patch": "delete"}}}
    assert strategic_merge(original, patch)["spec"] == {"priority": 1}


def test_patch_replace_in_a_map_and_in_a_list() -> None:
    original = pod(
        nodeSelector={"a": "1", "b": "2"},
        volumes=[{"name": "v1", "emptyDir": {}}, {"name": "v2", "emptyDir": {}}],
    )
    patch = {
        "spec": {
            "nodeSelector": {"$patch": "replace", "c": "3"},
            "volumes": [{"$patch": "replace"}, {"name": "v3", "emptyDir": {}}],
        }
    }
    merged = strategic_merge(original, patch)
    assert merged["spec"]["nodeSelector"] == {"c": "3"}
    assert merged["spec"]["volumes"] == [{"name": "v3", "emptyDir": {}}]


def test_patch_replace_of_one_merge_keyed_item() -> None:
    original = pod(containers=[{"name": "c", "image": "x", "args": ["a"]}])
    patch = {"spec": {"containers": [{"name": "c", "$patch": "replace", "image": "y"}]}}
    assert strategic_merge(original, patch)["spec"]["containers"] == [{"name": "c", "image": "y"}]


def test_retain_keys_clears_the_others() -> None:
    original = pod(volumes=[{"name": "v", "hostPath": {"path": "/x"}}])
    volume = {"name": "v", "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]}
    patch = {"spec": {"volumes": [volume]}}
    assert strategic_merge(original, patch)["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]


def test_finalizers_are_a_union_and_delete_from_primitive_list_removes() -> None:
    original = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {"metadata": {"finalizers": ["c", "a"], "$deleteFromPrimitiveList/finalizers": ["b"]}}
    assert strategic_merge(original, patch) == {"metadata": {"finalizers": ["a", "c"]}}


def test_set_element_order_is_accepted_and_ignored() -> None:
    original = pod(containers=[{"name": "a"}, {"name": "b"}])
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}
    assert strategic_merge(original, patch)["spec"]["containers"] == [{"name": "a"}, {"name": "b"}]


def test_directives_in_a_value_the_original_lacks_are_resolved_not_copied() -> None:
    original: Obj = {"spec": {}}
    patch = {
        "spec": {
            "containers": [{"name": "gone", "$patch": "delete"}, {"name": "c", "image": "i"}],
            "securityContext": {"runAsUser": 1, "fsGroup": None},
        }
    }
    assert strategic_merge(original, patch) == {
        "spec": {"containers": [{"name": "c", "image": "i"}], "securityContext": {"runAsUser": 1}}
    }


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"spec": {"containers": [{"image": "x"}]}}, "spec.containers: an item has no merge key"),
        ({"spec": {"containers": ["x"]}}, "spec.containers: items must be maps"),
        ({"spec": {"containers": {"name": "x"}}}, "spec.containers: must be a list"),
        ({"spec": {"$patch": "explode"}}, "spec.$patch: unknown directive 'explode'"),
        ({"spec": {"$bogus": 1}}, "spec.$bogus: unknown directive"),
        (
            {"spec": {"containers": [{"name": "c", "$patch": "merge-ish"}]}},
            "spec.containers[c].$patch: unknown directive 'merge-ish'",
        ),
        ({"$patch": "delete"}, "(top): $patch: delete cannot delete the whole object"),
        ({"spec": {"volumes": [{"name": "v", "$retainKeys": "name"}]}}, "$retainKeys: must be"),
    ],
)
def test_malformed_patches_name_the_path(patch: Obj, message: str) -> None:
    with pytest.raises(PatchError) as raised:
        strategic_merge(pod(containers=[{"name": "c"}], volumes=[{"name": "v"}]), patch)
    assert message in str(raised.value)
