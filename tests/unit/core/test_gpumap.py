"""GPU UUID -> index translation."""

from fma.core.gpumap import cuda_visible_devices, gpu_indices, parse_gpu_map

MAP = {"n1": {"GPU-a": 0, "GPU-b": 1}, "n2": {"GPU-c": 0}}


def test_translates_in_the_requesters_order() -> None:
    assert gpu_indices(["GPU-b", "GPU-a"], "n1", MAP) == ((1, 0), ())
    assert cuda_visible_devices([1, 0]) == "1,0"


def test_problems_are_reported_in_status_words() -> None:
    assert gpu_indices(["GPU-a"], "n1", None)[1] == ("GPU map ConfigMap gpu-map is not available",)
    assert gpu_indices(["GPU-z"], "n1", MAP)[1] == ("UUID GPU-z is not known",)
    assert gpu_indices(["GPU-c"], "n1", MAP)[1] == ("UUID GPU-c is on Node n2, not n1",)


def test_parse_reports_bad_entries_and_keeps_good_ones() -> None:
    parsed, problems = parse_gpu_map({"n1": '{"GPU-a": 0}', "n2": "nope", "n3": '{"GPU-x": "1"}'})
    assert parsed == {"n1": {"GPU-a": 0}}
    assert problems == [
        "gpu-map entry n2 is not JSON",
        "gpu-map entry n3 is not an object of UUID to index",
    ]
