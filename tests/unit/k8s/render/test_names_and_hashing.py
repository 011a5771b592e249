"""Kubernetes name syntax, generateName prefixes, canonical JSON and digest encodings."""

import base64
import hashlib

import pytest

from fma.adapters.k8s.render.hashing import canonical_json, sha256_base64, sha256_base64url
from fma.adapters.k8s.render.names import (
    generate_name,
    label_value_problem,
    qualified_name_problem,
)


@pytest.mark.parametrize(
    "key",
    ["app", "llm-d.ai/model", "a.b-c/x_y.z", "A1", "example.com/" + "n" * 63],
)
def test_qualified_names_accepted(key: str) -> None:
    assert qualified_name_problem(key) is None


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("", "name part must not be empty"),
        ("x/", "name part must not be empty"),
        ("/x", "prefix part must not be empty"),
        ("Example.com/x", "prefix part must be a lower-case DNS subdomain"),
        ("-app", "start and end with an alphanumeric"),
        ("app_", "start and end with an alphanumeric"),
        ("a b", "name part must consist of"),
        ("n" * 64, "at most 63 characters"),
        ("a/b/c", "prefix part must be a lower-case DNS subdomain"),
    ],
)
def test_qualified_names_rejected(key: str, words: str) -> None:
    problem = qualified_name_problem(key)
    assert problem is not None and words in problem


@pytest.mark.parametrize("value", ["", "v1", "a.b_c-d", "x" * 63])
def test_label_values_accepted(value: str) -> None:
    assert label_value_problem(value) is None


@pytest.mark.parametrize("value", ["-x", "x-", "a b", "a/b", "x" * 64])
def test_label_values_rejected(value: str) -> None:
    assert label_value_problem(value) is not None


def test_generate_name_keeps_short_names() -> None:
    assert generate_name("launcher-", "lc-small", "-") == "launcher-lc-small-"
    assert generate_name("", "my-req-abcde", "-dual-") == "my-req-abcde-dual-"


def test_generate_name_sanitises_the_variable_part() -> None:
    assert generate_name("launcher-", "Big.Model_LC", "-") == "launcher-big-model-lc-"


def test_generate_name_cuts_the_variable_part_to_58_characters() -> None:
    name = generate_name("", "r" * 60 + "-abcde", "-dual-")
    assert name == "r" * 52 + "-dual-"
    assert len(name) == 58
    cut_at_dash = generate_name("launcher-", "a" * 47 + "-bcd", "-")
    assert cut_at_dash == "launcher-" + "a" * 47 + "-"


def test_generate_name_of_nothing_keeps_the_fixed_parts() -> None:
    assert generate_name("launcher-", "...", "-") == "launcher-"
    assert generate_name("", "", "-dual-") == "dual-"


def test_canonical_json_sorts_keys_and_is_compact() -> None:
    assert canonical_json({"b": 1, "a": [{"d": 2, "c": "é"}]}) == '{"a":[{"c":"é","d":2}],"b":1}'


def test_digests_are_unpadded_sha256_over_the_concatenated_parts() -> None:
    digest = hashlib.sha256(b"abc;node=n").digest()
    assert sha256_base64("abc", ";node=", "n") == base64.b64encode(digest).decode().rstrip("=")
    assert sha256_base64url("abc;node=n") == (base64.urlsafe_b64encode(digest).decode().rstrip("="))
    assert "=" not in sha256_base64("x") and len(sha256_base64("x")) == 43
