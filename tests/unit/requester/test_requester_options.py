"""``fma requester serve``'s options: flags win over the environment, which wins over the
defaults; bad values are one line naming the flag."""

import pytest
from typer.testing import CliRunner

from fma.requester.cli import app
from fma.requester.durations import parse_duration_s
from fma.requester.options import RequesterOptions, build_options


def options(environ: dict[str, str] | None = None, **flags: str) -> RequesterOptions:
    return build_options(
        host="127.0.0.1",
        probes_port=flags.get("probes_port"),
        spi_port=flags.get("spi_port"),
        proxy_port=flags.get("proxy_port"),
        proxy_dial_timeout=flags.get("proxy_dial_timeout"),
        mock_gpus=flags.get("mock_gpus", "0"),
        environ=environ or {},
    )


def test_the_defaults_are_upstreams() -> None:
    default = options(mock_gpus="1")
    assert (default.probes_port, default.spi_port, default.proxy_port) == (8080, 8081, 8082)
    assert default.proxy_dial_timeout_s == 10.0
    assert default.accelerators == ("GPU-0",)


def test_the_environment_is_honoured_without_flags() -> None:
    chosen = options({"PROBES_PORT": "9080", "SPI_PORT": "9081"})
    assert (chosen.probes_port, chosen.spi_port, chosen.proxy_port) == (9080, 9081, 8082)


def test_flags_win_over_the_environment() -> None:
    chosen = options(
        {"PROBES_PORT": "9080", "SPI_PORT": "9081"},
        probes_port="7080",
        spi_port="7081",
        proxy_port="7082",
        proxy_dial_timeout="500ms",
    )
    assert (chosen.probes_port, chosen.spi_port, chosen.proxy_port) == (7080, 7081, 7082)
    assert chosen.proxy_dial_timeout_s == 0.5


def test_a_flag_wins_even_over_a_bad_variable() -> None:
    assert options({"PROBES_PORT": "nope"}, probes_port="7080").probes_port == 7080


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5h", 5400.0), ("250us", 250e-6),
     ("3", 3.0), ("2.5", 2.5), (".5s", 0.5)],
)  # fmt: skip
def test_durations_are_go_style_or_seconds(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10x", "-1s", "1 s", "1e3", "inf", "10S"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_s(text)


@pytest.mark.parametrize(
    ("flags", "environ", "named"),
    [
        ({"probes_port": "http"}, {}, "--probes-port"),
        ({"spi_port": "0"}, {}, "--spi-port"),
        ({"proxy_port": "65536"}, {}, "--proxy-port"),
        ({}, {"PROBES_PORT": "x"}, "$PROBES_PORT"),
        ({}, {"SPI_PORT": "-1"}, "$SPI_PORT"),
        ({"proxy_dial_timeout": "soon"}, {}, "--proxy-dial-timeout"),
        ({"proxy_dial_timeout": "0s"}, {}, "--proxy-dial-timeout"),
        ({"proxy_dial_timeout": "2h"}, {}, "--proxy-dial-timeout"),
        ({"proxy_port": "8080"}, {}, "--proxy-port 8080"),
        ({"spi_port": "9000"}, {"PROBES_PORT": "9000"}, "--spi-port 9000"),
    ],
)
def test_bad_values_name_the_flag_or_variable(
    flags: dict[str, str], environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace("$", r"\$")):
        options(environ, **flags)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--probes-port", "x"], "--probes-port"),
        (["--proxy-port", "99999"], "--proxy-port"),
        (["--proxy-dial-timeout", "10 seconds"], "--proxy-dial-timeout"),
    ],
)
def test_the_command_answers_a_bad_flag_with_one_line_and_status_2(
    args: list[str], named: str
) -> None:
    result = CliRunner().invoke(app, ["serve", "--mock-gpus", "0", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fma requester serve: ")
    assert named in lines[0]
