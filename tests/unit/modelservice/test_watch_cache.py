"""The reconciler's watch cache: whom each change concerns, and what it keeps."""

from typing import Any

from fma.adapters.k8s.modelservice.cache import ModelServiceCache
from fma.adapters.k8s.modelservice.kinds import CHILDREN, CONFIGMAP, DEPLOYMENT, MODELSERVICE

SERVICE = next(r for r in CHILDREN if r.kind == "Service")


def _msvc(name: str, uid: str, base: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"baseConfigMapRef": {"name": base}} if base else {}
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid}, "spec": spec}


def _child(name: str, *owners: tuple[str, str]) -> dict[str, Any]:
    refs = [
        {"apiVersion": "llm-d.ai/v1alpha1", "kind": "ModelService", "name": n, "uid": u}
        for n, u in owners
    ]
    return {"metadata": {"name": name, "namespace": "ns", "ownerReferences": refs}}


def test_changes_concern_their_owners_and_the_users_of_a_base() -> None:
    cache = ModelServiceCache("ns")
    assert cache.observe(MODELSERVICE, "ADDED", _msvc("a", "u-a", base="base")) == {"a"}
    assert cache.observe(MODELSERVICE, "ADDED", _msvc("b", "u-b")) == {"b"}
    # A BaseConfig edit reconciles the ModelServices that use it (upstream does not watch it).
    assert cache.observe(CONFIGMAP, "MODIFIED", {"metadata": {"name": "base"}}) == {"a"}
    assert cache.observe(CONFIGMAP, "MODIFIED", {"metadata": {"name": "other"}}) == set()
    shared = _child("shared", ("a", "u-a"), ("b", "u-b"))
    assert cache.observe(CONFIGMAP, "ADDED", shared) == {"a", "b"}
    # Disowned by b: both still hear of it (b must learn that it let go).
    assert cache.observe(CONFIGMAP, "MODIFIED", _child("shared", ("a", "u-a"))) == {"a", "b"}
    assert [o["metadata"]["name"] for o in cache.owned("u-b")] == []
    assert [o["metadata"]["name"] for o in cache.owned("u-a")] == ["shared"]


def test_only_owned_children_are_kept_and_deletions_forget() -> None:
    cache = ModelServiceCache("ns")
    assert cache.observe(DEPLOYMENT, None, {"metadata": {"name": "someone-elses"}}) == set()
    assert cache.owned("") == []
    assert cache.observe(DEPLOYMENT, None, _child("m-decode", ("m", "u-m"))) == {"m"}
    assert cache.observe(SERVICE, None, _child("m-decode", ("m", "u-m"))) == {"m"}
    owned = cache.owned("u-m")
    assert sorted((o["kind"], o["apiVersion"]) for o in owned) == [
        ("Deployment", "apps/v1"),  # filled in: a list's items come without them
        ("Service", "v1"),
    ]
    assert list(cache.deployments("u-m")) == ["m-decode"]
    assert cache.observe(DEPLOYMENT, "DELETED", _child("m-decode", ("m", "u-m"))) == {"m"}
    assert list(cache.deployments("u-m")) == []
    cache.observe(MODELSERVICE, None, _msvc("m", "u-m"))
    assert cache.modelservice("m") is not None
    cache.observe(MODELSERVICE, "DELETED", _msvc("m", "u-m"))
    assert cache.modelservice("m") is None
