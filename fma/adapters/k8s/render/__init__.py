"""Pure rendering for the Kubernetes operator: the core's actions made into Pod manifests,
Pod patches and launcher requests.

Everything here is a function of its arguments: plain dicts (Kubernetes objects as the API
returns them) and FMA's API types in, plain dicts or core values out; no I/O, no clock (times
are given by the caller). Bad input raises :class:`~fma.adapters.k8s.render.errors.RenderError`
with a one-line message naming the object and the field.

The modules, one job each:

- :mod:`.errors`: the one error;
- :mod:`.binding`: what a provider created already bound records;
- :mod:`.hashing`: canonical JSON and the SHA-256 digests of FMA's annotations;
- :mod:`.names`: Kubernetes name syntax (qualified names, label values, generateName);
- :mod:`.smp`: a strategic merge patch for Pods;
- :mod:`.podspec`: strict checks of a Pod's fields and small edits of its containers;
- :mod:`.flags`: reading vLLM command-line flags;
- :mod:`.launcher`: launcher Pods from a LauncherConfig;
- :mod:`.direct`: the direct path's nominal provider, its identity and its Pod;
- :mod:`.specs`: an InferenceServerConfig as a server spec and a launcher request;
- :mod:`.routing`: an InferenceServerConfig's routing labels and annotations on a Pod.

This package re-exports nothing: import each name from its module.
"""
