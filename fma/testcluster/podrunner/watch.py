"""List and watch every Pod of the cluster, in a thread, forever.

Contract: ``on_snapshot(pods)`` is called with the full list after every (re-)list, then
``on_event(type, pod)`` for each ``ADDED``/``MODIFIED``/``DELETED`` event in order. The
watch resumes from the last resourceVersion seen (bookmarks included) after a dropped
connection or an error, with a short back-off; an expired resourceVersion (410 Gone) makes
it list again. Objects are plain JSON dicts. Both callbacks run on the watch thread and
must only hand the data over (the runner posts them to its event loop).
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from fma.testcluster.podrunner.kube import Kube

_LOG = logging.getLogger(__name__)

WATCH_TIMEOUT_S: Final = 300
"""The server ends each watch after this long; it is then resumed at once."""
BACKOFF_S: Final = (0.1, 0.2, 0.5, 1.0, 2.0)

Pod = dict[str, Any]


class _Expired(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def _lines(response: Any) -> Any:
    from kubernetes.watch import watch

    lines: Any = watch.iter_resp_lines
    return lines(response)


class PodWatch:
    """The list+watch loop; :meth:`start` runs it on a daemon thread."""

    def __init__(
        self,
        kube: Kube,
        on_snapshot: Callable[[list[Pod]], None],
        on_event: Callable[[str, Pod], None],
    ) -> None:
        self._kube = kube
        self._on_snapshot = on_snapshot
        self._on_event = on_event
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="pod-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _list(self) -> str:
        response = self._kube.core.list_pod_for_all_namespaces(_preload_content=False)
        data = json.loads(response.data)
        self._on_snapshot(list(data.get("items") or []))
        return str(data["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        response = self._kube.core.list_pod_for_all_namespaces(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_TIMEOUT_S,
            _preload_content=False,
            _request_timeout=(10, WATCH_TIMEOUT_S + 30),
        )
        try:
            for line in _lines(response):
                if self._stop.is_set():
                    break
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Expired
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._on_event(str(kind), obj)
        finally:
            response.close()
        return version

    def _run(self) -> None:
        version: str | None = None
        failures = 0
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                failures = 0
            except _Expired:
                _LOG.info("watch expired (410): listing again")
                version = None
            except Exception as error:  # any transport or API error: resume after a pause
                if getattr(error, "status", None) == 410:
                    version = None
                pause = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                _LOG.warning("pod watch failed (%s); resuming in %.1f s", error, pause)
                time.sleep(pause)
