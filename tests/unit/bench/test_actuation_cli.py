"""``fma bench actuation``: bad input is one line naming what is wrong, and exit 2."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fma.cli import app


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["bench", "actuation", *args])
    return result.exit_code, result.stderr


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give either --trace or --namespace"),
        (("--trace", "a.jsonl", "--namespace", "ns"), "give either --trace or --namespace"),
        (("--trace", "/no/such/events.jsonl"), "/no/such/events.jsonl: cannot read"),
        (("--namespace", "ns", "--operator-log", "/no/such.log"), "--operator-log /no/such.log"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, err = run(*args)
    assert code == 2
    assert message in one_line(err)


def test_watching_goes_with_a_namespace(tmp_path: Path) -> None:
    code, err = run("--trace", write(tmp_path, ""), "--watch", "5")
    assert code == 2
    assert "--watch" in one_line(err)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"t": 1, "kind": "bind", "requester": "a"}\n',
            "event 1 (bind): missing field 'provider'",
        ),
        ("not json\n", "line 1: not JSON"),
        ('{"kind": "ready"}\n', "line 1: an event needs 't' and 'kind'"),
        ('{"t": true, "kind": "ready", "requester": "a"}\n', "field 't' is not a number"),
    ],
)
def test_a_bad_trace_names_the_event_and_field(tmp_path: Path, text: str, message: str) -> None:
    code, err = run("--trace", write(tmp_path, text))
    assert code == 2
    assert message in one_line(err)


def test_no_cluster_configuration_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    code, err = run("--namespace", "ns")
    assert code == 2
    assert "no cluster configuration" in one_line(err)


def test_an_empty_trace_gives_an_empty_iteration(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "actuation", "--trace", write(tmp_path, "")])
    assert result.exit_code == 0
    assert '"actuations": 0' in result.stdout
