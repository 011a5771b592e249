"""The ModelService reconciler, run inside ``fma operator run``.

It renders each ModelService with the pure :mod:`fma.modelservice` and makes the cluster
match: children created and updated by server-side apply, children no longer rendered pruned,
status (ready and available replicas per role, conditions) written, Events on bad input.
Deletion is the garbage collector's, through the children's owner references.

- ``kinds``: the resources involved and their API paths;
- ``client``: the API calls (apply, delete, status), typed;
- ``cache``: what the watches showed, and whom a change concerns;
- ``reconciler``: one reconcile — gather, decide, apply, status;
- ``controller``: Kopf handlers, the work queue, start and stop.

See ``docs/modelservice.md`` (the reconciler) and ``docs/operator.md`` (RBAC).
"""

from fma.adapters.k8s.modelservice.controller import ModelServiceController
from fma.adapters.k8s.modelservice.reconciler import ModelServiceOptions

__all__ = ["ModelServiceController", "ModelServiceOptions"]
