"""Kubernetes name syntax: qualified names (label and annotation keys), label values, and
``generateName`` prefixes.

The regular expressions are those of ``k8s.io/apimachinery/pkg/util/validation``, so what
passes here passes the API server.
"""

import re
from typing import Final

DNS1123_LABEL_MAX: Final = 63
DNS1123_SUBDOMAIN_MAX: Final = 253
QUALIFIED_NAME_MAX: Final = 63
LABEL_VALUE_MAX: Final = 63
GENERATE_NAME_MAX: Final = 58
"""The API server cuts a longer ``generateName`` to 58 characters before adding 5 random ones
(a Pod's hostname is its name, at most 63); FMA cuts the variable part itself, so that the
fixed parts (``launcher-``, ``-dual-``) survive."""

_DNS1123_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE: Final = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
_QUALIFIED_NAME_RE: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE_RE: Final = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_NOT_IN_NAME_RE: Final = re.compile(r"[^a-z0-9-]+")


def qualified_name_problem(key: str) -> str | None:
    """Why ``key`` is not a qualified name (``[prefix/]name``), or None when it is one.

    ``prefix`` is a DNS-1123 subdomain of at most 253 characters; ``name`` at most 63
    alphanumerics, ``-``, ``_`` and ``.``, starting and ending with an alphanumeric.
    """
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return "prefix part must not be empty"
        if len(prefix) > DNS1123_SUBDOMAIN_MAX:
            return f"prefix part must be at most {DNS1123_SUBDOMAIN_MAX} characters"
        if not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
            return "prefix part must be a lower-case DNS subdomain"
    if not name:
        return "name part must not be empty"
    if len(name) > QUALIFIED_NAME_MAX:
        return f"name part must be at most {QUALIFIED_NAME_MAX} characters"
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        return (
            "name part must consist of alphanumerics, '-', '_' or '.', and start and end "
            "with an alphanumeric"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None when it is one (empty is valid)."""
    if len(value) > LABEL_VALUE_MAX:
        return f"must be at most {LABEL_VALUE_MAX} characters"
    if not _LABEL_VALUE_RE.fullmatch(value):
        return (
            "must consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric"
        )
    return None


def generate_name(prefix: str, variable: str, suffix: str) -> str:
    """``prefix + variable + suffix`` fit for ``metadata.generateName``.

    ``variable`` (a user's object name) is lower-cased, every run of characters other than
    ``a-z``, ``0-9`` and ``-`` becomes one ``-``, and it is cut so that the whole is at most
    :data:`GENERATE_NAME_MAX` characters; leading and trailing dashes of the variable part
    are dropped so that no ``--`` appears at the joins.
    """
    room = max(0, GENERATE_NAME_MAX - len(prefix) - len(suffix))
    cleaned = _NOT_IN_NAME_RE.sub("-", variable.lower()).strip("-")
    cut = cleaned[:room].strip("-")
    if not cut:
        return (prefix + suffix.lstrip("-"))[:GENERATE_NAME_MAX]
    return prefix + cut + suffix
