"""GPU UUID to CUDA index translation and the choice of its source."""

import json
from pathlib import Path

import pytest

from fma.gpu.discovery import naive_map
from fma.launcher.errors import UnknownGpu
from fma.launcher.gpus import GpuTranslator, build_translator, load_map_file


def test_the_naive_mock_map_numbers_gpus_from_zero() -> None:
    assert naive_map(3) == {"GPU-0": 0, "GPU-1": 1, "GPU-2": 2}
    assert naive_map(0) == {}
    with pytest.raises(ValueError):
        naive_map(-1)


def test_translation_keeps_the_requested_order() -> None:
    translator = GpuTranslator({"GPU-a": 0, "GPU-b": 1, "GPU-c": 2}, source="t")
    assert translator.cuda_visible_devices(["GPU-c", "GPU-a"]) == "2,0"
    assert translator.cuda_visible_devices([]) == ""


def test_an_unknown_uuid_names_itself_and_what_the_node_has() -> None:
    translator = GpuTranslator({"GPU-a": 0}, source="t")
    with pytest.raises(UnknownGpu, match=r"GPU-x.*GPU-a"):
        translator.indices(["GPU-a", "GPU-x"])


def test_a_map_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"GPU-1234": 1, "GPU-5678": 0}))
    assert load_map_file(good) == {"GPU-1234": 1, "GPU-5678": 0}
    for bad_content in ("[1, 2]", '{"GPU-1": -1}', '{"GPU-1": "0"}', '{"GPU-1": true}', "{"):
        bad = tmp_path / "bad.json"
        bad.write_text(bad_content)
        with pytest.raises(ValueError):
            load_map_file(bad)


def test_the_source_is_the_file_then_the_mock_then_nvml(tmp_path: Path) -> None:
    file = tmp_path / "map.json"
    file.write_text(json.dumps({"GPU-f": 0}))
    from_file = build_translator(mock_gpus=2, gpu_map_file=file, environ={})
    assert from_file.uuids == ["GPU-f"]
    mock = build_translator(mock_gpus=2, gpu_map_file=None, environ={})
    assert mock.uuids == ["GPU-0", "GPU-1"]
    # No NVML on this machine: no GPUs, so any UUID is unknown (a CPU-only launcher).
    none = build_translator(mock_gpus=None, gpu_map_file=None, environ={})
    assert none.uuids == [] or none.source == "NVML"


def test_the_mock_falls_back_to_the_naive_map_when_the_configmap_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    environ = {"NODE_NAME": "node-1", "NAMESPACE": "fma"}
    translator = build_translator(mock_gpus=2, gpu_map_file=None, environ=environ)
    assert translator.uuids == ["GPU-0", "GPU-1"]


def test_without_nvml_the_devices_the_runtime_exposes_are_numbered_in_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("fma.launcher.gpus.nvml_map", lambda: None)
    environ = {"NVIDIA_VISIBLE_DEVICES": "GPU-node-3,GPU-node-1"}
    translator = build_translator(mock_gpus=None, gpu_map_file=None, environ=environ)
    assert translator.cuda_visible_devices(["GPU-node-1"]) == "1"
    assert translator.source == "NVIDIA_VISIBLE_DEVICES"
    for unnamed in ("all", "none", "0,1"):
        blind = build_translator(
            mock_gpus=None, gpu_map_file=None, environ={"NVIDIA_VISIBLE_DEVICES": unnamed}
        )
        assert blind.uuids == []
