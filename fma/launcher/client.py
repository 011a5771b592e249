"""An asynchronous client of the launcher API (httpx), with a resumable watch.

Change notification is the client's job: ``watch()`` LISTs the instances, then follows the
launcher's watch stream from the list's revision. When the stream ends (the launcher closed
a reader that fell behind, or the connection broke) it resumes from the last revision it
saw; when the launcher answers 410 Gone (that revision left its buffer, or the launcher
restarted and its counter began again) it LISTs again. Every (re)list is delivered as one
``Resync`` carrying the complete state, so a consumer's picture is never stale and never
needs an annotation on a Pod to learn that something changed.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import httpx

from fma.launcher.api import (
    INSTANCES_PATH,
    WATCH_PATH,
    DeleteAllResult,
    InstanceIdList,
    InstanceList,
    InstanceState,
    VllmConfig,
    WatchEvent,
)

TIMEOUT_S_DEFAULT: Final = 30.0
"""Upstream's controller uses 30 s for every call to a launcher."""
WATCH_LINE_BYTES_MAX: Final = 4 * 1024 * 1024
RETRY_DELAY_S_MIN: Final = 0.1
RETRY_DELAY_S_MAX: Final = 5.0


class LauncherClientError(Exception):
    """A launcher answered with an error status; ``status`` and ``detail`` say which."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"launcher answered {status}: {detail}")
        self.status = status
        self.detail = detail


class InstanceNotFound(LauncherClientError):
    """404: no such instance."""


class InstanceExists(LauncherClientError):
    """409: an instance with this id exists already."""


class WatchGone(LauncherClientError):
    """410: the launcher cannot resume the watch from that revision; LIST again."""


@dataclass(frozen=True, slots=True)
class Resync:
    """The complete state after a (re)list: replace whatever was known before."""

    revision: int
    instances: tuple[InstanceState, ...]


WatchItem = Resync | WatchEvent


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
        text = detail if isinstance(detail, str) else json.dumps(detail)
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text[:500]
    error_type = {404: InstanceNotFound, 409: InstanceExists, 410: WatchGone}.get(
        response.status_code, LauncherClientError
    )
    raise error_type(response.status_code, text)


class LauncherClient:
    """One launcher at ``base_url`` (for example ``http://10.0.0.5:8001``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = TIMEOUT_S_DEFAULT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(timeout_s), transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def healthy(self) -> bool:
        """True when ``GET /health`` answers 200."""
        try:
            response = await self._http.get("/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def create(self, config: VllmConfig, instance_id: str | None = None) -> InstanceState:
        """Start an instance: ``PUT`` with ``instance_id``, else ``POST`` (a uuid4 id)."""
        body = config.model_dump(exclude_none=True)
        if instance_id is None:
            response = await self._http.post(INSTANCES_PATH, json=body)
        else:
            response = await self._http.put(f"{INSTANCES_PATH}/{instance_id}", json=body)
        _raise_for_status(response)
        return InstanceState.model_validate_json(response.content)

    async def get(self, instance_id: str) -> InstanceState:
        """One instance; raises ``InstanceNotFound``."""
        response = await self._http.get(f"{INSTANCES_PATH}/{instance_id}")
        _raise_for_status(response)
        return InstanceState.model_validate_json(response.content)

    async def list(self) -> InstanceList:
        """Every instance with its state, and the launcher's revision."""
        response = await self._http.get(INSTANCES_PATH, params={"detail": "true"})
        _raise_for_status(response)
        return InstanceList.model_validate_json(response.content)

    async def list_ids(self) -> InstanceIdList:
        """Every instance's id, and the launcher's revision."""
        response = await self._http.get(INSTANCES_PATH, params={"detail": "false"})
        _raise_for_status(response)
        return InstanceIdList.model_validate_json(response.content)

    async def delete(self, instance_id: str) -> InstanceState:
        """Stop and remove one instance; raises ``InstanceNotFound``."""
        response = await self._http.delete(f"{INSTANCES_PATH}/{instance_id}")
        _raise_for_status(response)
        return InstanceState.model_validate_json(response.content)

    async def delete_all(self) -> DeleteAllResult:
        """Stop and remove every instance."""
        response = await self._http.delete(INSTANCES_PATH)
        _raise_for_status(response)
        return DeleteAllResult.model_validate_json(response.content)

    async def read_log(self, instance_id: str, start: int = 0, end: int | None = None) -> bytes:
        """Log bytes ``start..end`` (inclusive; at most 1 MiB per call); empty past the end."""
        last = "" if end is None else str(end)
        response = await self._http.get(
            f"{INSTANCES_PATH}/{instance_id}/log", headers={"Range": f"bytes={start}-{last}"}
        )
        if response.status_code == 416:
            return b""
        _raise_for_status(response)
        return response.content

    async def watch_from(self, since: int | None = None) -> AsyncIterator[WatchEvent]:
        """One watch stream, as the launcher sends it; ends when the launcher ends it.
        Raises ``WatchGone`` when ``since`` cannot be resumed."""
        params = {} if since is None else {"since": str(since)}
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        async with self._http.stream("GET", WATCH_PATH, params=params, timeout=timeout) as reply:
            if not reply.is_success:
                await reply.aread()
                _raise_for_status(reply)
            async for line in _bounded_lines(reply.aiter_bytes(), WATCH_LINE_BYTES_MAX):
                if line.strip():
                    yield WatchEvent.model_validate_json(line)

    async def watch(self, *, failure_count_max: int = 10) -> AsyncIterator[WatchItem]:
        """LIST, then follow changes forever: a ``Resync`` after every (re)list, then the
        events after it. Connection failures are retried with backoff; after
        ``failure_count_max`` consecutive ones the last error is raised."""
        failures = 0
        revision: int | None = None
        while True:
            try:
                if revision is None:
                    listed = await self.list()
                    revision = listed.revision
                    yield Resync(revision=revision, instances=tuple(listed.instances))
                delivered = False
                async for event in self.watch_from(revision):
                    failures, delivered = 0, True
                    revision = event.object.revision
                    yield event
                if delivered:
                    continue  # the launcher ended the stream: resume from the last revision
                error: Exception | None = None
            except WatchGone:
                revision = None
                continue
            except httpx.HTTPError as http_error:
                error = http_error
            # A failure, or a stream that ended with nothing in it: back off before retrying.
            failures += 1
            if failures >= failure_count_max and error is not None:
                raise error
            await asyncio.sleep(min(RETRY_DELAY_S_MAX, RETRY_DELAY_S_MIN * 2**failures))


async def _bounded_lines(chunks: AsyncIterator[bytes], line_bytes_max: int) -> AsyncIterator[str]:
    """Split a byte stream into lines, refusing any line longer than ``line_bytes_max``."""
    pending = bytearray()
    async for chunk in chunks:
        pending.extend(chunk)
        while (newline := pending.find(b"\n")) >= 0:
            line = bytes(pending[:newline])
            del pending[: newline + 1]
            yield line.decode()
        if len(pending) > line_bytes_max:
            raise LauncherClientError(502, f"a watch line exceeds {line_bytes_max} bytes")
    if pending:
        yield bytes(pending).decode()
