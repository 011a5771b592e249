"""Credentials of a test cluster: service-account key, admin token and kubeconfig.

The apiserver makes its own self-signed serving certificate (``--cert-dir``); its
``apiserver.crt`` holds the certificate and the CA that signed it, so it serves as the
kubeconfig's ``certificate-authority`` and the controller-manager's ``--root-ca-file``.
The admin authenticates with a static bearer token in group ``system:masters``, which RBAC
lets through; every other identity goes through Node,RBAC authorization.
"""

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ADMIN_USER = "fma-admin"


class PkiError(RuntimeError):
    """A credential could not be made; the message is one line."""


def ensure_openssl() -> str:
    """The path of ``openssl``, installing Debian's package first if it is missing.

    Installing needs root and apt-get (as on CI's fresh machines); elsewhere the error says
    what to install.
    """
    openssl = shutil.which("openssl")
    if openssl is not None:
        return openssl
    apt = shutil.which("apt-get")
    if apt is not None and os.geteuid() == 0:
        for step in (["update", "-qq"], ["install", "-y", "-qq", "openssl"]):
            subprocess.run([apt, *step], capture_output=True, check=False)
        openssl = shutil.which("openssl")
    if openssl is None:
        raise PkiError("openssl is needed to make the service-account key: apt-get install openssl")
    return openssl


def write_service_account_key(path: Path) -> None:
    """An RSA key that signs (apiserver) and verifies (both) service-account tokens."""
    openssl = ensure_openssl()
    proc = subprocess.run(
        [openssl, "genrsa", "-out", str(path), "2048"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise PkiError(f"openssl genrsa failed: {proc.stderr.strip().splitlines()[-1:]}")
    path.chmod(0o600)


def write_token_file(path: Path) -> str:
    """A ``--token-auth-file`` with one admin token; returns the token."""
    token = secrets.token_hex(24)
    path.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    path.chmod(0o600)
    return token


def kubeconfig(server: str, ca_file: Path, token: str) -> dict[str, Any]:
    """A kubeconfig with one context, ``fma-testcluster``, as the admin."""
    name = "fma-testcluster"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": ADMIN_USER}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> None:
    """Write :func:`kubeconfig` to ``path``, readable by its owner only."""
    path.write_text(yaml.safe_dump(kubeconfig(server, ca_file, token), sort_keys=False))
    path.chmod(0o600)
