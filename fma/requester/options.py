"""What ``fma requester serve`` is asked for: ports, the proxy's dial timeout and the GPUs.

Upstream's requester 0.7 takes its ports as flags (``--probes-port``, ``--spi-port``,
``--proxy-port``) and no longer reads ``PROBES_PORT``/``SPI_PORT``; charts written for the
earlier requester still set those variables, so they are honoured when the flag is absent.
A flag wins over its variable, a variable over the default. Flag values arrive as text so
that a bad one is a single line naming the flag, not a usage screen.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from fma.api.constants import (
    ENV_PROBES_PORT,
    ENV_SPI_PORT,
    REQUESTER_PROBES_PORT,
    REQUESTER_PROXY_PORT,
    REQUESTER_SPI_PORT,
)
from fma.requester.accelerators import discover
from fma.requester.durations import parse_duration_s

PROXY_DIAL_TIMEOUT_S_DEFAULT: Final = 10.0
PROXY_DIAL_TIMEOUT_S_MAX: Final = 3600.0
"""A dial that has not connected in an hour will not; longer is a typo."""


@dataclass(frozen=True, slots=True)
class RequesterOptions:
    """Where to listen, how long the proxy waits to connect, and which GPUs to report."""

    host: str
    probes_port: int
    spi_port: int
    proxy_port: int
    proxy_dial_timeout_s: float
    accelerators: tuple[str, ...]


def _port(text: str, *, source: str) -> int:
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError(f"{source}: {text!r} is not a TCP port number (1-65535)")
    return int(value)


def _chosen_port(
    flag_value: str | None,
    *,
    flag: str,
    env_name: str | None,
    environ: Mapping[str, str],
    default: int,
) -> int:
    if flag_value is not None:
        return _port(flag_value, source=flag)
    env_value = environ.get(env_name) if env_name is not None else None
    if env_value is not None and env_value.strip():
        return _port(env_value, source=f"${env_name}")
    return default


def _dial_timeout_s(text: str | None) -> float:
    if text is None:
        return PROXY_DIAL_TIMEOUT_S_DEFAULT
    try:
        seconds = parse_duration_s(text)
    except ValueError as error:
        raise ValueError(f"--proxy-dial-timeout: {error}") from None
    if not 0 < seconds <= PROXY_DIAL_TIMEOUT_S_MAX:
        raise ValueError(
            f"--proxy-dial-timeout: {text!r} must be more than 0 and at most "
            f"{PROXY_DIAL_TIMEOUT_S_MAX:g} s"
        )
    return seconds


def build_options(
    *,
    host: str,
    probes_port: str | None,
    spi_port: str | None,
    proxy_port: str | None,
    proxy_dial_timeout: str | None,
    mock_gpus: str | None,
    environ: Mapping[str, str],
) -> RequesterOptions:
    """Options from flags (None: not given), then the environment, then the defaults; raises
    ``ValueError`` with one line naming the flag or variable at fault."""
    ports = {
        "--probes-port": _chosen_port(
            probes_port,
            flag="--probes-port",
            env_name=ENV_PROBES_PORT,
            environ=environ,
            default=REQUESTER_PROBES_PORT,
        ),
        "--spi-port": _chosen_port(
            spi_port,
            flag="--spi-port",
            env_name=ENV_SPI_PORT,
            environ=environ,
            default=REQUESTER_SPI_PORT,
        ),
        "--proxy-port": _chosen_port(
            proxy_port,
            flag="--proxy-port",
            env_name=None,
            environ=environ,
            default=REQUESTER_PROXY_PORT,
        ),
    }
    if len(set(ports.values())) != len(ports):
        listing = ", ".join(f"{flag} {port}" for flag, port in ports.items())
        raise ValueError(f"the three ports must differ: {listing}")
    return RequesterOptions(
        host=host,
        probes_port=ports["--probes-port"],
        spi_port=ports["--spi-port"],
        proxy_port=ports["--proxy-port"],
        proxy_dial_timeout_s=_dial_timeout_s(proxy_dial_timeout),
        accelerators=tuple(discover(mock=mock_gpus, environ=environ)),
    )
