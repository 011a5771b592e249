"""``GET /v2/vllm/instances/{id}/log``: byte ranges, their edge cases, the 1 MiB cap."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from fma.launcher import logrange
from fma.launcher.api import INSTANCES_PATH, LOG_CHUNK_BYTES_MAX

LOG = b"".join(b"line %03d\n" % n for n in range(100))  # what the fake spawner writes
SIZE = len(LOG)


@pytest.fixture
def log_url(client: TestClient) -> str:
    assert client.put(f"{INSTANCES_PATH}/i1", json={"options": []}).status_code == 201
    return f"{INSTANCES_PATH}/i1/log"


def test_without_range_the_whole_small_log_is_200(client: TestClient, log_url: str) -> None:
    response = client.get(log_url)
    assert response.status_code == 200
    assert response.content == LOG
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-range"] == f"bytes 0-{SIZE - 1}/{SIZE}"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        pytest.param("bytes=0-9", 0, 9, id="closed"),
        pytest.param("bytes=10-", 10, SIZE - 1, id="open-ended"),
        pytest.param("bytes=-5", SIZE - 5, SIZE - 1, id="suffix"),
        pytest.param(f"bytes=-{SIZE * 3}", 0, SIZE - 1, id="suffix-longer-than-log"),
        pytest.param(f"bytes=5-{SIZE * 10}", 5, SIZE - 1, id="end-past-the-log-is-clamped"),
        pytest.param(f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1, id="last-byte"),
        pytest.param(" bytes=3-3 ", 3, 3, id="one-byte-with-spaces"),
    ],
)
def test_a_satisfiable_range_is_206_with_its_content_range(
    client: TestClient, log_url: str, header: str, start: int, end: int
) -> None:
    response = client.get(log_url, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == LOG[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    "header",
    [f"bytes={SIZE}-", f"bytes={SIZE + 100}-{SIZE + 200}", "bytes=-0"],
    ids=["start-at-end", "start-past-end", "empty-suffix"],
)
def test_a_range_past_the_end_is_416_with_the_size(
    client: TestClient, log_url: str, header: str
) -> None:
    response = client.get(log_url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=5-2",
        "bytes=-",
        "bytes=0-1,4-5",
        "items=0-1",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=" + "9" * 30 + "-",
        "",
    ],
    ids=[
        "end-before-start",
        "no-numbers",
        "multiple-ranges",
        "other-unit",
        "not-numbers",
        "three-parts",
        "absurd-number",
        "empty",
    ],
)
def test_a_malformed_range_is_400(client: TestClient, log_url: str, header: str) -> None:
    response = client.get(log_url, headers={"Range": header})
    assert response.status_code == 400
    assert "detail" in response.json()


def test_the_log_of_an_unknown_instance_is_404(client: TestClient) -> None:
    assert client.get(f"{INSTANCES_PATH}/nope/log").status_code == 404


def test_a_response_carries_at_most_one_mebibyte(
    client: TestClient, log_url: str, tmp_path: Path
) -> None:
    big = bytes(range(256)) * (6 * 1024)  # 1.5 MiB
    (tmp_path / "i1.log").write_bytes(big)
    first = client.get(log_url)
    assert first.status_code == 200
    assert first.content == big[:LOG_CHUNK_BYTES_MAX]
    assert first.headers["content-range"] == f"bytes 0-{LOG_CHUNK_BYTES_MAX - 1}/{len(big)}"
    rest = client.get(log_url, headers={"Range": f"bytes={LOG_CHUNK_BYTES_MAX}-"})
    assert rest.status_code == 206
    assert rest.content == big[LOG_CHUNK_BYTES_MAX:]
    tail = client.get(log_url, headers={"Range": f"bytes=-{len(big)}"})
    assert len(tail.content) == LOG_CHUNK_BYTES_MAX


def test_an_empty_log_is_200_without_range_and_416_with_one(
    client: TestClient, log_url: str, tmp_path: Path
) -> None:
    (tmp_path / "i1.log").write_bytes(b"")
    response = client.get(log_url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-range"] == "bytes */0"
    assert client.get(log_url, headers={"Range": "bytes=0-"}).status_code == 416


def test_select_pages_through_a_log_in_chunks() -> None:
    size, chunk = 10, 4
    spans, start = [], 0
    while True:
        try:
            span = logrange.select(f"bytes={start}-", size=size, chunk_bytes_max=chunk)
        except logrange.UnsatisfiableRange:
            break
        assert span is not None
        spans.append((span.start, span.end))
        start = span.end + 1
    assert spans == [(0, 3), (4, 7), (8, 9)]


@given(
    size=st.integers(0, 5000),
    first=st.one_of(st.none(), st.integers(0, 6000)),
    last=st.one_of(st.none(), st.integers(0, 6000)),
    chunk=st.integers(1, 700),
)
def test_any_answered_range_lies_inside_the_log_and_the_chunk(
    size: int, first: int | None, last: int | None, chunk: int
) -> None:
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    try:
        span = logrange.select(header, size=size, chunk_bytes_max=chunk)
    except (logrange.BadRange, logrange.UnsatisfiableRange):
        return
    assert span is not None
    assert 0 <= span.start <= span.end < size
    assert span.length <= chunk
    if first is not None:
        assert span.start == first
    elif last is not None:
        assert span.start == max(0, size - last)
