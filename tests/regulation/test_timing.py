"""The failure floor: a high quantile of real failed binds, never learnt from anything else."""
from __future__ import annotations

from authgate.regulation.timing import FailureFloor, NoFloor, seed_from


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


def test_a_seed_pads_the_first_failures_until_real_binds_are_seen() -> None:
    """Issue 15 item 9: the floor of a freshly started worker is the slowest dummy
    verification, not 0; it stays a lower bound until ten real samples are in, which then
    decide alone."""
    now = [0.0]

    def probe() -> None:  # three dummy verifications: 30, 50 and 40 ms
        now[0] += [0.03, 0.05, 0.04][probe.calls]  # type: ignore[attr-defined]
        probe.calls += 1  # type: ignore[attr-defined]
    probe.calls = 0  # type: ignore[attr-defined]
    floor = FailureFloor(ceiling=1.0, sleep=lambda s: None, monotonic=lambda: now[0])
    assert round(seed_from(floor, probe), 6) == 0.05
    assert round(floor.floor(), 6) == 0.05 and round(floor.pad(now[0]), 6) == 0.05
    floor.observe(0.02)
    assert round(floor.floor(), 6) == 0.05  # one fast bind does not undercut the seed
    for _ in range(9):
        floor.observe(0.02)
    assert floor.floor() == 0.02  # ten real binds: they alone decide
    floor.seed(5.0)
    assert floor.floor() == 0.02 and NoFloor().floor() == 0.0
