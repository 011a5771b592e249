"""Leader election on a ``coordination.k8s.io/v1`` Lease, so that two replicas never act at once.

client-go's algorithm, with its three durations (:class:`LeaseSettings`):

- a candidate takes the Lease when nobody holds it, or when the holder has not renewed it for
  ``lease_s`` *as observed by this candidate* (time is measured on the candidate's own
  monotonic clock from when it last saw the record change, so clocks need not agree); every
  write carries the Lease's resourceVersion, so two candidates cannot both win; a candidate
  tries every ``retry_s``;
- the leader renews every ``retry_s``; when it has not managed to for ``renew_deadline_s``
  (a hung call counts: each try is cut off at the deadline) it gives up
  (:meth:`LeaseElector.hold` returns with ``leading`` false). ``renew_deadline_s`` is shorter
  than ``lease_s``, so the old leader has stopped before any candidate may take over;
- a leader that stops cleanly first stops acting, then releases the Lease
  (:meth:`LeaseElector.release`), so that a standby takes over at its next try instead of
  waiting out the lease;
- a candidate with a ``takeover_delay_s`` takes a free Lease (absent, released or run out) only
  once it has seen it free that long, so that candidates without one win it first: a
  preferred replica keeps acting across its own restarts, a deferring one steps in only when
  none comes.

The Kubernetes client is synchronous; its calls run in a thread.
"""

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("fma.operator")


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """client-go's defaults (``--leader-elect-lease-duration`` and friends)."""

    name: str = "fma-controller"
    lease_s: float = 15.0
    """How long a candidate waits, after the record last changed, before taking over."""
    renew_deadline_s: float = 10.0
    """How long the leader keeps trying to renew before it gives up."""
    retry_s: float = 2.0
    """How often a candidate tries to acquire, and the leader to renew."""
    takeover_delay_s: float = 0.0
    """How long a candidate waits, once it sees the Lease free, before it takes it."""

    def problem(self) -> str | None:
        """What is wrong with these durations (client-go's rule), or None."""
        if not 0 < self.retry_s < self.renew_deadline_s:
            return "the retry period must be more than 0 and less than the renew deadline"
        if not self.renew_deadline_s < self.lease_s:
            return "the renew deadline must be less than the lease duration"
        if self.lease_s < 1:
            return "the lease duration must be at least 1 s (the Lease holds whole seconds)"
        if self.takeover_delay_s < 0:
            return "the take-over delay must not be negative"
        return None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaseElector:
    """Acquires, renews and releases one Lease for ``identity``."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        identity: str,
        settings: LeaseSettings = LeaseSettings(),
        *,
        monotonic: Callable[[], float] = time.monotonic,
        leases: Any | None = None,
    ) -> None:
        """``leases``: the Lease API (default: ``CoordinationV1Api`` over ``api``)."""
        self._api = leases if leases is not None else client.CoordinationV1Api(api)
        self._namespace = namespace
        self.identity = identity
        self.settings = settings
        self._monotonic = monotonic
        self._seen: tuple[str, str] | None = None
        """(holder, renewTime) of the record as last seen, and when (below)."""
        self._seen_at = 0.0
        self._free_since: float | None = None
        """When this candidate first saw the Lease free (its holder gone or run out)."""
        self.leading = False

    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Wait until this candidate holds the Lease (True), or ``stop`` is set (False)."""
        log.info("leader election: %s tries to take Lease %s", self.identity, self._where)
        reported: str | None = None
        while stop is None or not stop.is_set():
            try:
                if await asyncio.to_thread(self._try_acquire):
                    self.leading = True
                    log.info("leader election: %s holds Lease %s", self.identity, self._where)
                    return True
                holder = self._seen[0] if self._seen is not None else ""
                if holder != reported:
                    log.info("leader election: Lease %s is held by %s", self._where, holder)
                    reported = holder
            except ApiException as error:
                log.warning("leader election: %s: %s %s", self._where, error.status, error.reason)
            await _wait(stop, self.settings.retry_s)
        return False

    async def hold(self, stop: asyncio.Event | None = None) -> None:
        """Renew the Lease every ``retry_s`` until ``stop`` is set (then return, still
        leading: :meth:`release` it once the work has stopped), the Lease is found taken
        over, or no renewal has succeeded for ``renew_deadline_s`` (then return with
        ``leading`` false at once: leadership is lost)."""
        renewed_at = self._monotonic()
        deadline_s = self.settings.renew_deadline_s
        while stop is None or not stop.is_set():
            await _wait(stop, self.settings.retry_s)
            if stop is not None and stop.is_set():
                return
            left_s = deadline_s - (self._monotonic() - renewed_at)
            try:
                renewed = await asyncio.wait_for(
                    asyncio.to_thread(self._renew), timeout=max(left_s, 0.0)
                )
            except TimeoutError:
                log.warning("leader election: renewing %s timed out", self._where)
            except ApiException as error:
                log.warning("leader election: renewing %s: %s", self._where, error.status)
            else:
                if renewed:
                    renewed_at = self._monotonic()
                    continue
                log.error("leader election: Lease %s was taken over", self._where)
                self.leading = False
                return
            if self._monotonic() - renewed_at >= deadline_s:
                log.error("leader election: could not renew %s for %.0f s", self._where, deadline_s)
                self.leading = False
                return

    async def release(self) -> None:
        """Hand the Lease back (once this replica has stopped acting), so that a standby
        takes over at its next try."""
        if self.leading:
            await asyncio.to_thread(self._release)
        self.leading = False

    # --- one try each (blocking) ---------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self._namespace}/{self.settings.name}"

    def _read(self) -> Any | None:
        try:
            return self._api.read_namespaced_lease(
                self.settings.name, self._namespace, _request_timeout=self._timeout_s
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _try_acquire(self) -> bool:
        lease = self._read()
        now = _now()
        if lease is None:
            if not self._waited_for_takeover():
                return False
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.settings.name, namespace=self._namespace),
                spec=self._spec(now, transitions=0, acquired=now),
            )
            try:
                self._api.create_namespaced_lease(
                    self._namespace, body, _request_timeout=self._timeout_s
                )
            except ApiException as error:
                if error.status == 409:
                    return False  # another candidate created it first
                raise
            return True
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or ""
        record = (holder, str(spec.renew_time))
        if record != self._seen:
            self._seen, self._seen_at = record, self._monotonic()
        duration_s = spec.lease_duration_seconds or self.settings.lease_s
        expired = self._monotonic() - self._seen_at > duration_s
        if holder and holder != self.identity and not expired:
            self._free_since = None
            return False
        if holder != self.identity and not self._waited_for_takeover():
            return False
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquired = spec.acquire_time if holder == self.identity else now
        lease.spec = self._spec(now, transitions=transitions, acquired=acquired)
        try:
            self._replace(lease)
        except ApiException as error:
            if error.status == 409:
                return False  # changed since read: someone else renewed or took it
            raise
        return True

    def _waited_for_takeover(self) -> bool:
        """Whether the free Lease has been seen free for the take-over delay."""
        if self.settings.takeover_delay_s <= 0:
            return True
        now_s = self._monotonic()
        if self._free_since is None:
            self._free_since = now_s
        return now_s - self._free_since >= self.settings.takeover_delay_s

    def _renew(self) -> bool:
        lease = self._read()
        if lease is None or (lease.spec and lease.spec.holder_identity != self.identity):
            return False
        lease.spec.renew_time = _now()
        lease.spec.lease_duration_seconds = round(self.settings.lease_s)
        self._replace(lease)
        return True

    def _release(self) -> None:
        try:
            lease = self._read()
            if lease is None or not lease.spec or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = _now()
            self._replace(lease)
            log.info("leader election: released %s", self._where)
        except ApiException as error:
            log.warning("leader election: releasing %s: %s", self._where, error.status)

    def _replace(self, lease: Any) -> None:
        self._api.replace_namespaced_lease(
            self.settings.name, self._namespace, lease, _request_timeout=self._timeout_s
        )

    @property
    def _timeout_s(self) -> float:
        """Each call's own bound: no call outlives a renewal's deadline by much."""
        return self.settings.renew_deadline_s

    def _spec(self, now: dt.datetime, *, transitions: int, acquired: Any) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=round(self.settings.lease_s),
            acquire_time=acquired,
            renew_time=now,
            lease_transitions=transitions,
        )


async def _wait(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
