"""The reconcile shell both worlds run: a per-key work queue and gather -> decide -> apply.

Nothing here knows whether time is SimPy's or asyncio's: the queue is driven through the
:class:`~fma.control.ports.Scheduler` port, and the world supplies the one step that differs,
applying a plan (synchronously in the simulator, with awaited HTTP and API calls in the
operator). So the simulator exercises the very queue, retries and follow-up rules the operator
runs.
"""
