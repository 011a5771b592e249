"""The launcher: a per-node service that keeps vLLM imported and forks instances on request.

Its HTTP API is documented in :mod:`fma.launcher.api` and ``docs/launcher.md``; the
composition root is :mod:`fma.launcher.server`. Importing this package imports nothing heavy.
"""
