"""Container output becomes CRI log lines, as the kubelet's log reader expects them."""

from datetime import UTC, datetime
from pathlib import Path

from fma.testcluster.podrunner import crilog
from fma.testcluster.podrunner.crilog import MAX_LINE, LineSplitter

AT = "2026-01-02T03:04:05.000000000Z"


def test_whole_lines_are_full_and_a_cut_line_waits_for_its_end() -> None:
    out = LineSplitter("stdout")
    assert out.feed(b"one\ntw", AT) == f"{AT} stdout F one\n".encode()
    assert out.feed(b"o\n\nthree", AT) == f"{AT} stdout F two\n{AT} stdout F \n".encode()
    assert out.close(AT) == f"{AT} stdout P three\n".encode()
    assert out.close(AT) == b""


def test_a_long_line_is_split_into_partial_lines() -> None:
    err = LineSplitter("stderr")
    lines = err.feed(b"x" * (2 * MAX_LINE + 5) + b"\n", AT).splitlines()
    assert [line.split(b" ", 3)[2] for line in lines] == [b"P", b"P", b"F"]
    assert b"".join(line.split(b" ", 3)[3] for line in lines) == b"x" * (2 * MAX_LINE + 5)


def test_timestamps_are_rfc3339_with_nanoseconds_in_utc() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert crilog.timestamp(at) == "2026-01-02T03:04:05.123456000Z"


def test_rotation_keeps_the_newest_run_and_the_one_before(tmp_path: Path) -> None:
    runs = [tmp_path / f"{n}.cri" for n in range(3)]
    for run in runs:
        run.write_text(run.name)
        crilog.rotate(tmp_path, run)
    assert (tmp_path / crilog.CURRENT).read_text() == "2.cri"
    assert (tmp_path / crilog.PREVIOUS).read_text() == "1.cri"
