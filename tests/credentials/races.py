"""One harness for the login steps' races across processes (issue 20 item 1): each racer is
a spawned process with its own services on the test's database, as another gunicorn worker
would be. A racer's target prepares (its own session, the code typed), calls ``start()``,
runs the step and returns its outcome; the parent starts them all at once and collects the
sorted outcomes. What a target does not catch is not an outcome: the parent fails with the
racer's traceback at once, instead of waiting out the queue's timeout."""
from __future__ import annotations

import multiprocessing
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from authgate.composition.root import Services, build_services
from authgate.core.clock import FixedClock
from tests.conftest import make_settings

WAIT = 60  # seconds a racer waits for the others and for the start; the parent for an exit
COLLECT = 120  # seconds the parent waits for one racer's outcome

Start = Callable[[], None]
Target = Callable[[Services, Any, Start], Any]  # (services, payload, start) -> outcome


@dataclass(frozen=True)
class Where:
    """What a racer needs to build its own services like the test's: the database, the
    settings' folder and users file, and the test clock's time."""

    url: str
    tmp: str
    users: str
    now: str

    def services(self) -> Services:
        settings = make_settings(Path(self.tmp), Path(self.users), storage={"url": self.url})
        return build_services(settings, clock=FixedClock(datetime.fromisoformat(self.now)))


def _racer(target: Target, payload: Any, where: Where, ready: Any, go: Any,
           results: Any) -> None:
    """One process: its services, the target's preparation, the start, the outcome."""
    started = threading.Event()

    def start() -> None:
        ready.wait(timeout=WAIT)  # every racer prepared, and the parent there
        if not go.wait(timeout=WAIT):
            raise TimeoutError("the race was never started")
        started.set()

    svc = None
    try:
        svc = where.services()
        outcome = target(svc, payload, start)
        if not started.is_set():
            raise RuntimeError(f"{target.__name__} returned without calling start()")
        results.put(("outcome", outcome))
    except BaseException:  # noqa: BLE001 - every failure goes to the parent, with its traceback
        ready.abort()  # nobody waits for this racer
        results.put(("raised", traceback.format_exc()))
    finally:
        if svc is not None:
            svc.audit.close()
            svc.engine.dispose()


class Race:
    """Racers started and waiting: ``go()`` lets them run the step, ``outcomes()`` collects."""

    def __init__(self, target: Target, payloads: Sequence[Any], where: Where) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._ready = ctx.Barrier(len(payloads) + 1)
        self._go, self._results = ctx.Event(), ctx.Queue()
        self._procs = [ctx.Process(target=_racer, args=(target, payload, where, self._ready,
                                                        self._go, self._results))
                       for payload in payloads]
        self._outcomes: list[Any] | None = None

    def start(self) -> None:
        for proc in self._procs:
            proc.start()
        try:
            self._ready.wait(timeout=WAIT)
        except threading.BrokenBarrierError:
            self.outcomes()  # fails with the racers' tracebacks
            raise

    def go(self) -> None:
        self._go.set()

    def outcomes(self) -> list[Any]:
        """Every racer's outcome, sorted; each racer ended (exit code 0)."""
        if self._outcomes is None:
            reports = [self._results.get(timeout=COLLECT) for _ in self._procs]
            raised = [text for kind, text in reports if kind == "raised"]
            assert not raised, "a racer raised:\n" + "\n".join(raised)
            for proc in self._procs:
                proc.join(timeout=WAIT)
            assert [proc.exitcode for proc in self._procs] == [0] * len(self._procs)
            self._outcomes = sorted(outcome for _, outcome in reports)
        return self._outcomes

    def end(self) -> None:
        """No racer outlives its test: released if still waiting, stopped if still running."""
        self.go()
        for proc in self._procs:
            proc.join(timeout=WAIT)
            if proc.is_alive():
                proc.kill()
                proc.join()


class Races:
    """Races on one test's database (the ``races`` fixture)."""

    def __init__(self, services: Services, tmp_path: Path, users_file: Path) -> None:
        self._services, self._tmp, self._users = services, tmp_path, users_file

    def _where(self) -> Where:
        return Where(url=self._services.engine.url.render_as_string(hide_password=False),
                     tmp=str(self._tmp), users=str(self._users),
                     now=self._services.clock.now().isoformat())

    @contextmanager
    def started(self, target: Target, payloads: Sequence[Any]) -> Iterator[Race]:
        """One racer per payload, each prepared and waiting for ``go()``: for a test that
        starts them at a moment of its own (inside its own step)."""
        race = Race(target, payloads, self._where())
        try:
            race.start()
            yield race
        finally:
            race.end()

    def run(self, target: Target, payloads: Sequence[Any]) -> list[Any]:
        """One racer per payload, all started together; their sorted outcomes."""
        with self.started(target, payloads) as race:
            race.go()
            return race.outcomes()
