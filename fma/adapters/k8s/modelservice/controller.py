"""The ModelService reconciler wired into the operator: watches, a work queue, reconciles.

Kopf event handlers (one per watched resource: ModelServices and every child kind) put each
object into the :class:`~.cache.ModelServiceCache` and queue the ModelServices it concerns:
the ModelService itself, the owners of a child, the users of a BaseConfig. Nothing else
happens in a handler. The queue is the shared reconcile shell's (:mod:`fma.control.queue`:
one reconcile per ModelService at a time, deduplicated, backing off after failures); its key
is the ModelService's name. As for the operator's own watches, Kopf keeps no state on these
objects: no finalizers, no annotations.
"""

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf
from kubernetes import client

from fma.adapters.k8s.modelservice import client as kube
from fma.adapters.k8s.modelservice.cache import ModelServiceCache
from fma.adapters.k8s.modelservice.kinds import CHILDREN, MODELSERVICE, Resource
from fma.adapters.k8s.modelservice.reconciler import ModelServiceOptions, ModelServiceReconciler
from fma.control.ports import Scheduler
from fma.control.queue import WorkQueue
from fma.core.outcomes import FollowUp

log = logging.getLogger("fma.modelservice")

WATCHED: tuple[Resource, ...] = (MODELSERVICE, *CHILDREN)


class ModelServiceController:
    """The ModelService half of ``fma operator run`` for one namespace."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        options: ModelServiceOptions,
        scheduler: Scheduler,
        *,
        clock: Callable[[], float] | None = None,
        workers: int = 2,
    ) -> None:
        self.options = options
        self.api = api
        self.namespace = namespace
        self.cache = ModelServiceCache(namespace)
        self.reconciler = ModelServiceReconciler(api, self.cache, options, clock or scheduler.now_s)
        self.queue = WorkQueue(scheduler, self._process, workers=workers)
        self._tasks: set[asyncio.Task[None]] = set()

    def observe(self, resource: Resource, event_type: str | None, body: Mapping[str, Any]) -> None:
        for name in self.cache.observe(resource, event_type, body):
            if name:
                self.queue.add(name)

    def _process(self, key: str, done: Callable[[FollowUp], None]) -> None:
        task = asyncio.get_running_loop().create_task(self._reconcile(key, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconcile(self, key: str, done: Callable[[FollowUp], None]) -> None:
        follow = FollowUp(failed=True)
        try:
            follow = await self.reconciler.reconcile(key)
        except asyncio.CancelledError:
            raise
        except kube.ApiError as error:
            log.warning("reconcile of ModelService %s failed: %s", key, error)
        except Exception:
            log.exception("reconcile of ModelService %s failed", key)
        finally:
            done(follow)

    async def list_all(self) -> None:
        """The first picture, before the watches start: every watched resource listed once.
        A resource the cluster does not serve (a CRD not installed) or that the operator may
        not list is left out with a warning: its objects cannot be made, and the ModelServices
        that need them say so in their status."""
        if not self.options.enabled:
            return
        for resource in WATCHED:
            try:
                items = await asyncio.to_thread(kube.list_items, self.api, resource, self.namespace)
            except kube.ApiError as error:
                if error.status == 404:
                    log.warning("%s %s: not served (no CRD)", resource.api_version, resource.kind)
                elif error.status == 403:
                    log.warning("%s %s: not allowed to list", resource.api_version, resource.kind)
                else:
                    raise
                continue
            for item in items:
                self.observe(resource, None, item)

    def register(self, registry: kopf.OperatorRegistry) -> None:
        """One event handler per watched resource, nothing else."""
        if not self.options.enabled:
            return
        for resource in WATCHED:
            # A coroutine, so that Kopf runs it on the loop (with the queue it feeds).
            async def handler(
                event: Mapping[str, Any], _resource: Resource = resource, **_: Any
            ) -> None:
                body = event.get("object")
                if isinstance(body, Mapping):
                    self.observe(_resource, event.get("type"), body)

            kopf.on.event(
                resource.group,
                resource.version,
                resource.plural,
                registry=registry,
                id=f"fma-modelservice-{resource.plural}",
            )(handler)

    async def close(self) -> None:
        self.queue.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
