"""An open-loop login flood for benchmarks/availability.py. Not a test.

A botnet does not wait for answers: it sends its attempts at its own rate, each on a new
connection from a new address. ``wrk`` is closed-loop (each connection waits for its answer
before it sends again), so the rate it reaches is whatever the gateway lets through, and a
gateway that favours forward auth over its login page would seem to face a smaller flood.
This flood sends ``rate`` attempts a second whatever happens to them, and reports how many
were answered (by status), how many were still unanswered after ``timeout`` (queued by a
portal that runs at a lower priority), and how fast the answered ones came.
"""
from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass
class FloodReport:
    offered: float = 0.0  # attempts sent per second
    answered: float = 0.0  # attempts answered per second of the flood
    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: int = 0  # no answer within the timeout (or the connection was refused)
    p50_ms: float = 0.0  # of the answered attempts

    def describe(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (f"offered {self.offered:,.0f}/s, answered {self.answered:,.0f}/s ({codes}; "
                f"p50 {self.p50_ms:,.0f} ms), unanswered {self.unanswered}")


@dataclass(frozen=True)
class FloodTarget:
    port: int
    token: str  # a real CSRF token and the cookie it belongs to (an attacker reuses them)
    cookie: str
    users: tuple[str, ...]
    host: str = "auth.localhost"


class OpenLoopFlood:
    """``rate`` wrong-password attempts a second for ``seconds``, in a thread of its own."""

    def __init__(self, target: FloodTarget, *, rate: float, seconds: float,
                 timeout: float = 10.0) -> None:
        self._target, self._rate, self._seconds, self._timeout = target, rate, seconds, timeout
        self._report = FloodReport()
        self._latencies: list[float] = []
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> OpenLoopFlood:
        self._thread.start()
        return self

    def result(self) -> FloodReport:
        self._thread.join()
        return self._report

    async def _run(self) -> None:
        total = int(self._rate * self._seconds)
        started = time.monotonic()
        tasks = []
        for n in range(total):
            delay = started + n / self._rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._attempt(n)))
        sent_for = max(time.monotonic() - started, 1e-9)
        await asyncio.gather(*tasks)
        report = self._report
        report.offered = total / sent_for
        report.answered = sum(report.statuses.values()) / sent_for
        report.p50_ms = statistics.median(self._latencies) * 1000 if self._latencies else 0.0

    async def _attempt(self, n: int) -> None:
        t = self._target
        body = urlencode({"csrf_token": t.token, "rd": "", "username": t.users[n % len(t.users)],
                          "password": f"wrong-guess-{n}"}).encode()
        address = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"  # noqa: S311
        head = (f"POST /login HTTP/1.1\r\nHost: {t.host}\r\nCookie: {t.cookie}\r\n"
                f"X-Forwarded-Proto: https\r\nX-Forwarded-Host: {t.host}\r\n"
                f"X-Forwarded-For: {address}\r\nConnection: close\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sent = time.monotonic()
        try:
            status = await asyncio.wait_for(self._exchange(head + body), self._timeout)
        except (OSError, TimeoutError, ValueError):
            self._report.unanswered += 1
            return
        self._latencies.append(time.monotonic() - sent)
        self._report.statuses[status] += 1

    async def _exchange(self, request: bytes) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", self._target.port)
        try:
            writer.write(request)
            await writer.drain()
            line = await reader.readline()
            await reader.read()  # the page, to the end (Connection: close)
            return int(line.split()[1])
        finally:
            writer.close()
