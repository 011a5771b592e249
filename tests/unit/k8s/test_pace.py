"""The pace of asking: eager at first, shared between eager askers, then a doubling back-off."""

from fma.adapters.k8s.pace import Pace, PaceSettings

SETTINGS = PaceSettings(
    eager_s=5.0, eager_interval_s=0.02, eager_per_s=100.0, interval_s_min=0.25, interval_s_max=2.0
)


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_an_asker_is_eager_for_a_while_then_backs_off_doubling_to_the_cap() -> None:
    clock = Clock()
    pace = Pace(SETTINGS, clock=clock)
    with pace.asker() as asker:
        waits = []
        while clock.now_s < 5.0:
            asker.asked()
            waits.append(asker.wait_s())
            clock.now_s += waits[-1]
        assert set(waits) == {0.02}
        assert asker.attempts_patient == 0
        later = []
        for _ in range(6):
            asker.asked()
            later.append(asker.wait_s())
        assert later == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
        assert asker.attempts_patient == 6
        assert not asker.eager
    assert pace.eager_askers == 0


def test_eager_askers_share_the_pace() -> None:
    clock = Clock()
    pace = Pace(SETTINGS, clock=clock)
    askers = [pace.asker().__enter__() for _ in range(300)]
    assert pace.eager_askers == 300
    assert askers[0].wait_s() == 3.0  # 300 askers at 100 questions a second in all
    for asker in askers[:290]:
        asker.__exit__(None, None, None)
    assert askers[-1].wait_s() == 0.1
    clock.now_s = 5.0
    assert not askers[-1].eager  # its eager phase is over: it no longer counts
    assert pace.eager_askers == 9
    assert askers[-1].wait_s() == 0.25


def test_without_an_eager_phase_the_back_off_starts_at_once() -> None:
    pace = Pace(PaceSettings(eager_s=0.0, interval_s_min=0.1, interval_s_max=0.3), clock=Clock())
    with pace.asker() as asker:
        assert [asker.wait_s() for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]
    assert pace.eager_askers == 0
