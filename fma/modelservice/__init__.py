"""ModelService rendering: a ModelService plus a BaseConfig in, the objects it owns out.

Pure (no I/O, no clock, no cluster client): the ``generate`` dry run and the operator call the
same :func:`fma.modelservice.render.render`. Modules, one job each:

- ``gotemplate/``: a Go ``text/template`` interpreter (the subset base configs use);
- ``variables``: the template variables and ``getPort``;
- ``interpolate``: which fields are templates, rendered;
- ``baseconfig``: rendered BaseConfig values parsed into base objects;
- ``uris``: ``hf://``, ``pvc://`` and ``oci://`` model sources;
- ``names``: children's names and labels;
- ``children``: the ModelService's overlays and its own objects, owner references;
- ``merge``: the semantic merge of overlays onto base objects;
- ``parallelism``: ``parallelism.tensor`` made real;
- ``fma_mode``: requester Pods and launchers in place of the decode Deployment;
- ``render``: the pipeline; ``cli``: ``fma modelservice generate`` (the one file I/O edge).

See ``docs/modelservice.md``.
"""
