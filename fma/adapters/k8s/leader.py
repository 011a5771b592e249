"""Leader election on a ``coordination.k8s.io/v1`` Lease, so that two replicas never act at once.

client-go's algorithm, in brief: a candidate takes the Lease when nobody holds it, or when the
holder has not renewed it for ``lease_s`` *as observed by this candidate* (time is measured on
the candidate's own monotonic clock from when it last saw the record change, so clocks need not
agree); every write carries the Lease's resourceVersion, so two candidates cannot both win.
The leader renews every ``renew_s``; if it cannot renew for ``lease_s - renew_s`` it gives up
(:meth:`LeaseElector.hold` returns), because another candidate may take over any moment after
``lease_s``. A leader that stops cleanly releases the Lease, so that a standby takes over at
its next try instead of waiting out the lease.

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
    name: str = "fma-controller"
    lease_s: float = 15.0
    renew_s: float = 5.0
    retry_s: float = 2.0


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
    ) -> None:
        self._api = client.CoordinationV1Api(api)
        self._namespace = namespace
        self.identity = identity
        self.settings = settings
        self._monotonic = monotonic
        self._seen: tuple[str, str] | None = None
        """(holder, renewTime) of the record as last seen, and when (below)."""
        self._seen_at = 0.0
        self.leading = False

    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Wait until this candidate holds the Lease (True), or ``stop`` is set (False)."""
        while stop is None or not stop.is_set():
            try:
                if await asyncio.to_thread(self._try_acquire):
                    self.leading = True
                    log.info("leader election: %s holds Lease %s", self.identity, self._where)
                    return True
            except ApiException as error:
                log.warning("leader election: %s: %s %s", self._where, error.status, error.reason)
            await _wait(stop, self.settings.retry_s)
        return False

    async def hold(self, stop: asyncio.Event | None = None) -> None:
        """Renew the Lease until ``stop`` is set (then release it) or a renewal has failed for
        too long (then return at once: leadership is lost)."""
        renewed_at = self._monotonic()
        give_up_s = self.settings.lease_s - self.settings.renew_s
        while stop is None or not stop.is_set():
            await _wait(stop, self.settings.renew_s)
            if stop is not None and stop.is_set():
                break
            try:
                if await asyncio.to_thread(self._renew):
                    renewed_at = self._monotonic()
                    continue
                log.error("leader election: Lease %s was taken over", self._where)
                self.leading = False
                return
            except ApiException as error:
                log.warning("leader election: renewing %s: %s", self._where, error.status)
            if self._monotonic() - renewed_at > give_up_s:
                log.error("leader election: could not renew %s for %.0f s", self._where, give_up_s)
                self.leading = False
                return
        await asyncio.to_thread(self._release)
        self.leading = False

    # --- one try each (blocking) ---------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self._namespace}/{self.settings.name}"

    def _read(self) -> Any | None:
        try:
            return self._api.read_namespaced_lease(self.settings.name, self._namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _try_acquire(self) -> bool:
        lease = self._read()
        now = _now()
        if lease is None:
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.settings.name, namespace=self._namespace),
                spec=self._spec(now, transitions=0, acquired=now),
            )
            try:
                self._api.create_namespaced_lease(self._namespace, body)
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
            return False
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquired = spec.acquire_time if holder == self.identity else now
        lease.spec = self._spec(now, transitions=transitions, acquired=acquired)
        try:
            self._api.replace_namespaced_lease(self.settings.name, self._namespace, lease)
        except ApiException as error:
            if error.status == 409:
                return False  # changed since read: someone else renewed or took it
            raise
        return True

    def _renew(self) -> bool:
        lease = self._read()
        if lease is None or (lease.spec and lease.spec.holder_identity != self.identity):
            return False
        lease.spec.renew_time = _now()
        lease.spec.lease_duration_seconds = round(self.settings.lease_s)
        self._api.replace_namespaced_lease(self.settings.name, self._namespace, lease)
        return True

    def _release(self) -> None:
        try:
            lease = self._read()
            if lease is None or not lease.spec or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = _now()
            self._api.replace_namespaced_lease(self.settings.name, self._namespace, lease)
            log.info("leader election: released %s", self._where)
        except ApiException as error:
            log.warning("leader election: releasing %s: %s", self._where, error.status)

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
