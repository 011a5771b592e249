"""The one error rendering raises, and how its messages name fields."""

import json


class RenderError(ValueError):
    """Input that cannot be rendered into a Kubernetes object or a launcher request.

    ``str(error)`` is one user-facing line that names the object and the field at fault, e.g.
    ``Pod ns/req-1: annotation dual-pods.llm-d.ai/server-patch: line 3: unknown key .Foo``,
    fit to be written as is into a status.
    """


def key_path(path: str, key: object) -> str:
    """The path of a map's entry in messages: ``metadata.labels["app"]``."""
    return f"{path}[{json.dumps(key) if isinstance(key, str) else key}]"
