"""The chart's placement toggle: off, nothing of it renders; on, the webhook is wired to the
operator's Pods through a certificate the API server can trust."""

import base64
import subprocess
from pathlib import Path
from typing import Any

from fma.api.constants import PLACEMENT_WEBHOOK_PATH
from tests.unit.chart.conftest import CHART, NAMESPACE, RELEASE, Helm, Render, of_kind, one

ON = {"placement": {"enabled": True}}
SERVICE = f"{RELEASE}-placement-webhook"
TLS_DIR = "/var/run/secrets/fma/placement"


def _operator_pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d["spec"]["template"] for d in of_kind(objects, "Deployment")]


def test_off_renders_no_webhook_and_no_operator_option(render: Render) -> None:
    objects = render()
    assert not of_kind(objects, "MutatingWebhookConfiguration")
    assert not [s for s in of_kind(objects, "Secret") if "placement" in s["metadata"]["name"]]
    for pod in _operator_pods(objects):
        args = pod["spec"]["containers"][0]["args"]
        assert not [a for a in args if "placement" in a or "sleeper" in a]


def test_on_the_webhook_reaches_every_operator_pod_on_its_port(render: Render) -> None:
    objects = render(ON)
    (config,) = of_kind(objects, "MutatingWebhookConfiguration")
    (webhook,) = config["webhooks"]
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["sideEffects"] == "None"
    assert webhook["rules"][0]["operations"] == ["CREATE"]
    assert webhook["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": NAMESPACE}
    target = webhook["clientConfig"]["service"]
    assert (target["name"], target["namespace"], target["path"]) == (
        SERVICE,
        NAMESPACE,
        PLACEMENT_WEBHOOK_PATH,
    )
    service = one(objects, "Service", SERVICE)
    (port,) = service["spec"]["ports"]
    assert port["port"] == target["port"]
    selector = service["spec"]["selector"]
    pods = _operator_pods(objects)
    assert len(pods) == 2  # the dual-pods controller and the populator's standbys
    for pod in pods:
        assert selector.items() <= pod["metadata"]["labels"].items()
        (container,) = pod["spec"]["containers"]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert named[port["targetPort"]] == 9443
        assert "--placement-port=9443" in container["args"]
        assert "--sleeper-labels" in container["args"]
        assert f"--placement-tls-dir={TLS_DIR}" in container["args"]
        (mount,) = container["volumeMounts"]
        assert mount["mountPath"] == TLS_DIR
        (volume,) = pod["spec"]["volumes"]
        assert volume["name"] == mount["name"]
        assert volume["secret"]["secretName"] == f"{SERVICE}-tls"


def test_the_generated_certificate_is_signed_by_the_ca_the_api_server_trusts(
    render: Render, tmp_path: Path
) -> None:
    objects = render(ON)
    secret = one(objects, "Secret", f"{SERVICE}-tls")
    (config,) = of_kind(objects, "MutatingWebhookConfiguration")
    ca_bundle = config["webhooks"][0]["clientConfig"]["caBundle"]
    assert secret["data"]["ca.crt"] == ca_bundle
    (tmp_path / "ca.pem").write_bytes(base64.b64decode(ca_bundle))
    (tmp_path / "tls.pem").write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    host = f"{SERVICE}.{NAMESPACE}.svc"  # the name the API server checks
    done = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.pem", "-verify_hostname", host, "tls.pem"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    wrong = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.pem", "-verify_hostname", "other.svc", "tls.pem"],
        capture_output=True,
        cwd=tmp_path,
        check=False,
    )
    assert wrong.returncode != 0  # the check above can fail


def test_a_users_certificate_is_mounted_and_its_ca_trusted(render: Render) -> None:
    values = {"placement": {"enabled": True, "tls": {"secretName": "mine", "caBundle": "Q0E="}}}
    objects = render(values)
    assert not [s for s in of_kind(objects, "Secret") if "placement" in s["metadata"]["name"]]
    (config,) = of_kind(objects, "MutatingWebhookConfiguration")
    assert config["webhooks"][0]["clientConfig"]["caBundle"] == "Q0E="
    for pod in _operator_pods(objects):
        assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "mine"


def test_a_users_certificate_without_its_ca_is_refused_saying_so(helm: Helm) -> None:
    done = helm(
        "template", RELEASE, str(CHART),
        "--set", "placement.enabled=true", "--set", "placement.tls.secretName=mine",
    )  # fmt: skip
    assert done.returncode != 0
    assert "placement.tls.secretName needs placement.tls.caBundle" in done.stderr
