"""The failure floor: a high quantile of real failed binds, never learnt from anything else."""
from __future__ import annotations

from authgate.regulation.timing import FailureFloor, NoFloor


def test_floor_is_the_p90_of_real_binds_and_pads_up_to_it() -> None:
    now = [100.0]
    slept: list[float] = []
    floor = FailureFloor(samples=10, quantile=0.9, sleep=slept.append,
                         monotonic=lambda: now[0])
    assert floor.floor() == 0.0 and floor.pad(now[0]) == 0.0
    for ms in range(1, 11):
        floor.observe(ms / 1000)
    assert floor.floor() == 0.010
    now[0] = 100.004
    assert round(floor.pad(100.0), 6) == 0.006 and round(slept[-1], 6) == 0.006
    now[0] = 100.5
    assert floor.pad(100.0) == 0.0  # already slower than the floor: nothing added


def test_floor_ignores_absurd_samples_and_can_be_off() -> None:
    floor = FailureFloor(ceiling=1.0, sleep=lambda s: None)
    floor.observe(30.0)
    floor.observe(-1.0)
    assert floor.floor() == 0.0
    floor.observe(0.2)
    off = NoFloor()  # the null object instead of an ``enabled`` flag
    off.observe(0.2)
    assert off.floor() == 0.0 and off.pad(off.monotonic() - 0.0) == 0.0
