"""The requester: holds GPUs for a model server, reports them, and relays its readiness.

See ``docs/requester.md``; the composition root is :mod:`fma.requester.server`.
"""
