"""Fast Model Actuation (FMA) for LLM serving on Kubernetes.

Pure decisions live in :mod:`fma.core`; :mod:`fma.adapters.sim` and :mod:`fma.adapters.k8s`
gather snapshots, call the core and apply the returned actions.
"""

__version__ = "0.1.0"
