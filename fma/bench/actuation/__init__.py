"""Actuation metrics: which path served each requester (hot, warm, cold_launcher, cold), judged
from timestamps, with hit rates and per-path timings, from a trace or a live cluster.

- :mod:`~fma.bench.actuation.evidence`: what a source knows of one requester's actuation;
- :mod:`~fma.bench.actuation.classify`: the verdict and the timings (pure);
- :mod:`~fma.bench.actuation.report` and :mod:`~fma.bench.actuation.schema`: the JSON;
- :mod:`~fma.bench.actuation.from_trace`: evidence from ``events.jsonl``;
- :mod:`~fma.bench.actuation.cluster`: evidence from a namespace (list and watch of Pods);
- :mod:`~fma.bench.actuation.records`: the operator's records, from its log;
- :mod:`~fma.bench.actuation.vllm_log`: sleep and wake lines of an engine's log.

``docs/metrics.md`` documents the rules and every field.
"""
