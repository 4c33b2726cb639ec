"""wrk as the one load generator of the HTTP benchmarks, and their refusal to report a figure
that failed requests would flatter (issue 20 item 5). Not a test.

A closed-loop client in Python capped the bare baseline at ~770 req/s against ~3,900 under
wrk, so every side is now loaded by wrk (``-t/-c`` the same for both sides of a ratio).
Requests that spend a one-time credential (a TOTP code, a session about to be raised) go
through ``one_use.lua``: each request its own prepared line, never reused.

Every run counts what was not a success: wrk's non-2xx/3xx answers and socket errors, and
for one-use runs every answer that was not an accepted second factor, every replayed line
(the thread ran out) and every code missing for its time step; the server's own account
(access log, audit rows) must show as many accepted as it answered. A run with any of these
prints ``INVALID`` instead of its figures and the benchmark exits non-zero.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.integration.harness import Proc

LUA = Path(__file__).resolve().with_name("one_use.lua")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass(frozen=True)
class WrkRun:
    """What wrk (and ``one_use.lua``, for one-use runs) counted."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0  # wrk: status >= 400 ("Non-2xx or 3xx responses")
    socket_errors: int = 0  # connect + read + write + timeout
    accepted: int | None = None  # one-use runs: answers that were an accepted factor
    refused: int = 0  # one-use runs: every other answer
    exhausted: int = 0  # one-use runs: lines sent a second time (a thread ran out)
    late: int = 0  # one-use runs: no code for the time step (the run outlived its codes)
    used: tuple[int, ...] = ()  # one-use runs: lines each thread took, in thread order
    first_refusal: str = ""

    def failures(self) -> dict[str, int]:
        return {"non-2xx": self.non_2xx, "socket errors": self.socket_errors,
                "refused": self.refused, "replayed (ran out of credentials)": self.exhausted,
                "no code for the step": self.late}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _number(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text, re.M)
    if match is None:
        if default is None:
            raise ValueError(f"wrk output without {pattern!r}:\n{text}")
        return default
    return match.group(1)


def parse_wrk(text: str) -> WrkRun:
    """wrk's ``--latency`` report, plus ``one_use.lua``'s line when it ran."""
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        text)
    one_use = re.search(r"^one-use: accepted=(\d+) refused=(\d+) exhausted=(\d+) late=(\d+) "
                        r"used=([\d,]*)$", text, re.M)
    run = WrkRun(
        requests=int(_number(r"(\d+) requests in", text)),
        rps=float(_number(r"Requests/sec:\s+([\d.]+)", text)),
        p50_ms=_ms(_number(r"^\s+50%\s+(\S+)", text)),
        p99_ms=_ms(_number(r"^\s+99%\s+(\S+)", text)),
        non_2xx=int(_number(r"Non-2xx or 3xx responses:\s+(\d+)", text, "0")),
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0)
    if one_use is None:
        return run
    accepted, refused, exhausted, late = (int(one_use.group(n)) for n in range(1, 5))
    return WrkRun(**{**run.__dict__, "accepted": accepted, "refused": refused,
                     "exhausted": exhausted, "late": late,
                     "used": tuple(int(n) for n in one_use.group(5).split(",") if n),
                     "first_refusal": _number(r"^one-use first refusal: (.*)$", text, "")})


def invalid(counts: Mapping[str, int]) -> str | None:
    """None when nothing failed; else the line that replaces the figure."""
    bad = {name: n for name, n in counts.items() if n}
    if not bad:
        return None
    detail = ", ".join(f"{name} {n:,}" for name, n in bad.items())
    return f"INVALID: {sum(bad.values()):,} non-success ({detail}); no figure reported"


# -- one-time credentials --------------------------------------------------------------------
@dataclass(frozen=True)
class Credential:
    """One request's worth: POST ``path`` with ``body`` (``{code}`` stands for the TOTP code
    of the step it is sent in) and ``cookie``; ``secret`` is the base32 TOTP seed."""

    path: str
    cookie: str
    body: str
    secret: str = field(repr=False)


def credential_lines(credentials: Iterable[Credential], *, base_step: int, steps: int,
                     period: int = 30) -> str:
    """``one_use.lua``'s input: path, cookie, body, then the codes for ``steps`` steps."""
    import pyotp

    out = []
    for c in credentials:
        totp = pyotp.TOTP(c.secret, interval=period)
        codes = " ".join(totp.at((base_step + n) * period) for n in range(steps))
        out.append(f"{c.path}\t{c.cookie}\t{c.body}\t{codes}\n")
    return "".join(out)


def unused(credentials: Sequence[Credential], used: Sequence[int]) -> list[Credential]:
    """What is left after a run: thread n (0-based) of T took lines n, n+T, ... in order."""
    threads = len(used)
    return [c for i, c in enumerate(credentials) if i // threads >= used[i % threads]]


def run_wrk(url: str, *, threads: int, connections: int, seconds: float,
            headers: Mapping[str, str] | None = None, credentials: Sequence[Credential] = (),
            check: str = "", timeout: str = "10s") -> tuple[WrkRun, str]:
    """One wrk run (one-use when ``credentials`` are given); returns its report and text."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--latency", "--timeout", timeout]
    for key, value in (headers or {}).items():
        cmd += ["-H", f"{key}: {value}"]
    if not credentials:
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
        return parse_wrk(out), out
    period = 30
    base = int(time.time()) // period
    steps = math.ceil((seconds + 5) / period) + 1
    with tempfile.NamedTemporaryFile("w", suffix=".lines", delete=False) as fh:
        fh.write(credential_lines(credentials, base_step=base, steps=steps, period=period))
    try:
        args = [fh.name, str(threads), check, str(base), str(period)]
        out = subprocess.run([*cmd, "-s", str(LUA), url, "--", *args], capture_output=True,
                             text=True, check=True).stdout
    finally:
        os.unlink(fh.name)
    return parse_wrk(out), out


# -- the server's side -----------------------------------------------------------------------
_ACCESS = re.compile(r'"[A-Z]+ ([^ ?"]+)[^"]*" (\d{3}) ')


def access_counts(text: str) -> Counter[tuple[str, int]]:
    """(path, status) of each line of a gunicorn access log (its default format)."""
    return Counter((m.group(1), int(m.group(2))) for m in map(_ACCESS.search,
                                                              text.splitlines()) if m)


def access_log(path: Path) -> Counter[tuple[str, int]]:
    return access_counts(path.read_text(encoding="utf-8", errors="replace"))


@dataclass(frozen=True)
class Served:
    """The server's own account of one run (after it went idle: in-flight requests too)."""

    answered: int
    accepted: int  # what the server itself counts as success (access log status, audit rows)
    cpu_us: float  # server CPU (master + workers) per accepted request

    def failures(self) -> dict[str, int]:
        return {"not accepted by the server's own account": self.answered - self.accepted}


@dataclass
class Target:
    """A server under test: how to count what it answered and what it accepted."""

    name: str
    pid: int  # gunicorn master (its process group is measured)
    url: str
    answered: Callable[[], int]
    accepted: Callable[[], int]
    check: str = ""  # one-use runs: one_use.lua's CHECK
    headers: dict[str, str] = field(default_factory=dict)
    credentials: list[Credential] = field(default_factory=list)


@dataclass(frozen=True)
class Measured:
    name: str
    run: WrkRun
    served: Served

    def failures(self) -> dict[str, int]:
        return {**self.run.failures(), **self.served.failures()}

    def line(self) -> str:
        refused = invalid(self.failures())
        if refused is not None:
            sample = f"; first: {self.run.first_refusal}" if self.run.first_refusal else ""
            return f"  {self.name:12} {refused}{sample}"
        return (f"  {self.name:12} {self.run.rps:7,.0f} req/s   p50 {self.run.p50_ms:7.2f} ms   "
                f"p99 {self.run.p99_ms:8.2f} ms   server CPU {self.served.cpu_us:6,.0f} us/req"
                f"   ({self.run.requests:,} requests, non-success 0)")


def measure(target: Target, *, threads: int, connections: int, seconds: float,
            procs: Sequence[Proc]) -> Measured:
    """One wrk run on ``target``, with the server CPU it cost per accepted request (counted
    after every server went idle, so requests still queued when wrk stopped count in both
    numerator and denominator). One-use credentials taken are dropped from the target."""
    from benchmarks.verify import _cpu_ticks, _wait_idle

    _wait_idle(list(procs))
    ticks, answered, accepted = _cpu_ticks(target.pid), target.answered(), target.accepted()
    run, _ = run_wrk(target.url, threads=threads, connections=connections, seconds=seconds,
                     headers=target.headers, credentials=target.credentials,
                     check=target.check)
    if target.credentials:
        if run.accepted is None or len(run.used) != threads:
            raise SystemExit(f"{target.name}: one_use.lua reported no counts")
        target.credentials = unused(target.credentials, run.used)
    _wait_idle(list(procs))
    ticks = _cpu_ticks(target.pid) - ticks
    answered, accepted = target.answered() - answered, target.accepted() - accepted
    cpu_us = ticks * 1e6 / os.sysconf("SC_CLK_TCK") / max(accepted, 1)
    return Measured(target.name, run, Served(answered, accepted, cpu_us))
