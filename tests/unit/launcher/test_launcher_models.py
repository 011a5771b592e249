"""The wire models: what a request may contain, and how the state serialises."""

import pytest
from pydantic import ValidationError

from fma.launcher.api import InstanceState, InstanceStatus, VllmConfig


def test_options_as_a_string_are_split_with_shell_quoting() -> None:
    config = VllmConfig(options='--model \'my model\' --port=8000  --x "a\\"b"')
    assert config.options == ["--model", "my model", "--port=8000", "--x", 'a"b']


def test_options_as_a_list_are_kept_verbatim() -> None:
    assert VllmConfig(options=["a b", "$(x)", ""]).options == ["a b", "$(x)", ""]


@pytest.mark.parametrize(
    "fields",
    [
        {"options": "x" * 70000},
        {"options": ["ok"], "env_vars": {"LD PRELOAD": "x"}},
        {"options": ["ok"], "gpu_uuids": [""]},
        {"options": ["ok"], "gpu_uuids": [f"GPU-{n}" for n in range(65)]},
        {"options": ["ok"], "env_vars": {f"V{n}": "x" for n in range(257)}},
        {"options": ["ok"], "annotations": {f"k{n}": "x" for n in range(65)}},
    ],
    ids=[
        "options-string-too-long",
        "env-name-space",
        "empty-uuid",
        "too-many-gpus",
        "too-many-env",
        "too-many-annotations",
    ],
)
def test_unbounded_or_invalid_fields_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VllmConfig.model_validate(fields)


def test_a_state_omits_its_null_fields_on_the_wire() -> None:
    state = InstanceState(
        instance_id="a", status=InstanceStatus.RUNNING, revision=1, options=[], pid=5
    )
    assert state.model_dump(mode="json", exclude_none=True) == {
        "instance_id": "a",
        "status": "running",
        "revision": 1,
        "options": [],
        "pid": 5,
    }
