"""The proxy's one configuration: where it forwards, set once by the controller.

The controller PUTs ``{"address": <provider Pod IP>, "port": <engine port>}`` to
``/v1/proxy/config`` after it binds the requester. The first PUT starts the listener and is
answered only once it listens; the same target again is answered as done (a restarted
controller PUTs again); another target is a conflict, because a requester is bound to one
provider for its whole life. A listener that cannot start fails that PUT and every later one
with the same error: the requester must be restarted to get a proxy.
"""

import asyncio
import ipaddress
import logging
import re
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from fma.requester.proxy import CONNECTIONS_MAX_DEFAULT, TcpProxy

_LOG = logging.getLogger(__name__)
DNS_NAME_CHARS_MAX: Final = 253
_DNS_LABEL_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
ERRORS_SHOWN_MAX: Final = 5


def _canonical_address(value: str) -> str:
    """An IP address in its canonical form, or a DNS name in lower case without its final
    dot; anything else is refused."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    if (
        name
        and all(_DNS_LABEL_RE.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()  # a dotted number is a bad IP address, not a name
    ):
        return name.lower()
    raise PydanticCustomError(
        "address", "must be an IPv4 or IPv6 address or a DNS name, not '{value}'", {"value": value}
    )


class ProxyTarget(BaseModel):
    """Where the proxy forwards: the body of PUT and GET ``/v1/proxy/config``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Annotated[
        str,
        Field(min_length=1, max_length=DNS_NAME_CHARS_MAX + 1),
        AfterValidator(_canonical_address),
    ]
    """The provider Pod's IP (or a DNS name); kept in canonical form."""
    port: Annotated[StrictInt, Field(ge=1, le=65535)]
    """The engine's port in the provider Pod."""

    @property
    def host_port(self) -> str:
        """``address:port``, with an IPv6 address in brackets."""
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


class TargetInvalid(ValueError):
    """A PUT body that is not a target: ``status`` 400 (not JSON) or 422 (a bad field)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_target(body: bytes) -> ProxyTarget:
    """The target in a PUT body; raises ``TargetInvalid`` naming the field at fault."""
    try:
        return ProxyTarget.model_validate_json(body)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        if any(problem["type"] == "json_invalid" for problem in problems):
            raise TargetInvalid(400, f"the body is not JSON: {problems[0]['msg']}") from None
        detail = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in problems[:ERRORS_SHOWN_MAX]
        )
        raise TargetInvalid(422, detail) from None


class ProxyConflict(Exception):
    """The proxy already forwards to another target."""


class ProxyFailed(Exception):
    """The proxy's listener could not start (or the requester is stopping)."""


class ProxyConfigurator:
    """Holds the proxy and its target; see the module doc. Not thread-safe: one event loop."""

    def __init__(
        self,
        *,
        listen_host: str,
        listen_port: int,
        dial_timeout_s: float,
        connections_max: int = CONNECTIONS_MAX_DEFAULT,
    ) -> None:
        self._listen_host = listen_host
        self._listen_port = listen_port
        self._dial_timeout_s = dial_timeout_s
        self._connections_max = connections_max
        self._lock = asyncio.Lock()  # concurrent PUTs: one starts the listener, others wait
        self._target: ProxyTarget | None = None
        self._proxy: TcpProxy | None = None
        self._failure: str | None = None

    @property
    def target(self) -> ProxyTarget | None:
        """The target once the proxy listens; None before."""
        return self._target

    @property
    def failure(self) -> str | None:
        """Why the proxy cannot listen, once that is known; None otherwise."""
        return self._failure

    @property
    def proxy(self) -> TcpProxy | None:
        """The running proxy, once configured."""
        return self._proxy

    async def configure(self, target: ProxyTarget) -> ProxyTarget:
        """Start forwarding to ``target`` (returns once the proxy listens), or confirm that it
        already does. Raises ``ProxyConflict`` for another target, ``ProxyFailed`` when the
        listener cannot start, now or before."""
        async with self._lock:
            if self._failure is not None:
                raise ProxyFailed(self._failure)
            if self._target is not None:
                if self._target == target:
                    return self._target
                raise ProxyConflict(
                    f"the proxy forwards to {self._target.host_port}; a requester's target "
                    f"does not change (asked for {target.host_port})"
                )
            proxy = TcpProxy(
                upstream_host=target.address,
                upstream_port=target.port,
                dial_timeout_s=self._dial_timeout_s,
                connections_max=self._connections_max,
            )
            try:
                await proxy.start(self._listen_host, self._listen_port)
            except OSError as error:
                self._failure = (
                    f"the proxy cannot listen on {self._listen_host}:{self._listen_port}: {error}"
                )
                _LOG.error("%s", self._failure)
                raise ProxyFailed(self._failure) from error
            self._proxy, self._target = proxy, target
            _LOG.info(
                "proxy listening on %s:%d, forwarding to %s",
                self._listen_host,
                proxy.listen_port,
                target.host_port,
            )
            return target

    async def close(self) -> None:
        """Stop the proxy, if it runs, and refuse any later configuration."""
        async with self._lock:
            if self._failure is None:
                self._failure = "the requester is stopping"
            if self._proxy is not None:
                await self._proxy.close()
