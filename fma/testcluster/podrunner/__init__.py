"""The pod runner: kubelet and container runtime for the project's own Pods on test nodes.

``fma testcluster up`` starts it next to KWOK. Pods bound to a KWOK node whose containers
use the project's image (:mod:`.images`) really run: each in its own network namespace with
its Pod IP (:mod:`.network`, :mod:`.netns`, :mod:`.ipam`), its environment resolved like the
kubelet's (:mod:`.env`, :mod:`.expansion`), its ServiceAccount token mounted (:mod:`.volumes`),
GPUs assigned like a device plugin (:mod:`.gpus`), probes (:mod:`.probes`, :mod:`.prober`),
restarts and a kubelet's status (:mod:`.status`), processes tracked by cgroup
(:mod:`.processes`, :mod:`.cgroups`, :mod:`.sandbox_exec`). KWOK's stages skip those Pods
(:mod:`.stages`); every other Pod keeps KWOK's fake lifecycle. :mod:`.watch` feeds
:mod:`.runner`, which gives each Pod a :mod:`.pod` worker (:mod:`.context` holds what they
share, :mod:`.kube` the API calls). See docs/testcluster.md, "Pods that really run".
"""
