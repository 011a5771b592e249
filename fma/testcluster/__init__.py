"""A real local Kubernetes control plane for tests (``fma testcluster``).

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK run as local processes
on 127.0.0.1, built once from published Go modules into a version-keyed cache
(:mod:`~fma.testcluster.build`), with fake GPU nodes (:mod:`~fma.testcluster.nodes`).
:func:`fma.testcluster.cluster.up` starts one, :func:`~fma.testcluster.cluster.down` stops it.
Modules are imported lazily by the CLI; importing this package costs nothing.
"""
