"""The client calls behind typed functions: a raw answer is the API server's JSON."""

from typing import Any

from fma.adapters.k8s import kube


class Raw:
    """What a client method returns with ``_preload_content=False``: the unread response."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.released = False

    def release_conn(self) -> None:
        self.released = True


def test_an_answer_comes_back_as_json_and_its_connection_goes_back_to_the_pool() -> None:
    answers: list[Raw] = []

    def patch(name: str, body: dict[str, Any], **kwargs: Any) -> Raw:
        assert kwargs == {"_preload_content": False, "_request_timeout": 5}
        answers.append(Raw(b'{"metadata": {"name": "%s", "resourceVersion": "7"}}' % name.encode()))
        return answers[-1]

    assert kube.call_json(patch, "p", {}, _request_timeout=5) == {
        "metadata": {"name": "p", "resourceVersion": "7"}
    }
    assert answers[0].released


def test_an_empty_answer_is_an_empty_object_and_a_model_passes_through() -> None:
    assert kube.call_json(lambda **_: Raw(b"")) == {}
    model = object()
    assert kube.call_json(lambda **_: model) is model
