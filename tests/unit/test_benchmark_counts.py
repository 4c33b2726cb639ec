"""The benchmarks' honesty helpers (benchmarks/loadgen.py): what wrk and one_use.lua report is
read right, and any non-success turns a figure into INVALID (issue 20 item 5)."""
from __future__ import annotations

import pyotp

from benchmarks.loadgen import (
    Credential,
    Measured,
    Served,
    WrkRun,
    access_counts,
    credential_lines,
    invalid,
    parse_wrk,
    unused,
)

WRK = """Running 3s test @ http://127.0.0.1:36281/login/totp
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    34.59ms   10.20ms  80.00ms   70.00%
    Req/Sec   230.00     30.00   300.00     70.00%
  Latency Distribution
     50%  850.00us
     75%   40.00ms
     90%   45.00ms
     99%    1.20s
  1337 requests in 3.00s, 1.20MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:    445.67
Transfer/sec:    400.00KB
"""
ONE_USE = ("one-use: accepted=1330 refused=7 exhausted=3 late=1 used=670,675\n"
           "one-use first refusal: 401 <!doctype html> <title>Sign in</title>\n")


def test_a_plain_wrk_report_is_read_with_its_failures() -> None:
    run = parse_wrk(WRK)
    assert (run.requests, run.rps, run.p50_ms, run.p99_ms) == (1337, 445.67, 0.85, 1200.0)
    assert run.non_2xx == 5 and run.socket_errors == 3 and run.accepted is None


def test_a_clean_wrk_report_has_no_failures() -> None:
    clean = "\n".join(line for line in WRK.splitlines()
                      if "Socket errors" not in line and "Non-2xx" not in line)
    assert invalid(parse_wrk(clean).failures()) is None


def test_a_one_use_report_counts_every_kind_of_failure() -> None:
    run = parse_wrk(WRK + ONE_USE)
    assert (run.accepted, run.refused, run.exhausted, run.late) == (1330, 7, 3, 1)
    assert run.used == (670, 675) and run.first_refusal.startswith("401 <!doctype")
    line = invalid(run.failures())
    assert line is not None and line.startswith("INVALID: 19 non-success")
    assert "replayed (ran out of credentials) 3" in line and "no code for the step 1" in line


def test_nothing_failed_is_the_only_valid_count() -> None:
    assert invalid({"non-2xx": 0, "refused": 0}) is None
    assert invalid({}) is None
    assert invalid({"non-2xx": 0, "refused": 1}) == \
        "INVALID: 1 non-success (refused 1); no figure reported"


def test_a_figure_is_printed_only_when_client_and_server_agree() -> None:
    run = WrkRun(requests=100, rps=50.0, p50_ms=20.0, p99_ms=40.0, accepted=100, used=(50, 50))
    good = Measured("totp step", run, Served(answered=104, accepted=104, cpu_us=2500.0))
    assert "50 req/s" in good.line() and "non-success 0" in good.line()
    short = Measured("totp step", run, Served(answered=104, accepted=103, cpu_us=2500.0))
    assert "INVALID" in short.line() and "req/s" not in short.line()


def test_a_run_takes_lines_round_robin_by_thread() -> None:
    creds = [Credential("/p", "", f"n={n}", "S" * 32) for n in range(7)]
    # thread 0 had lines 0, 2, 4, 6 and sent 2; thread 1 had 1, 3, 5 and sent 3
    left = unused(creds, (2, 3))
    assert [c.body for c in left] == ["n=4", "n=6"]
    assert unused(creds, (0, 0)) == creds


def test_credential_lines_carry_the_code_of_each_step() -> None:
    secret = pyotp.random_base32()
    line = credential_lines([Credential("/login/totp", "a=b; c=d", "x=1&code={code}", secret)],
                            base_step=59_000_000, steps=3)
    path, cookie, body, codes = line.rstrip("\n").split("\t")
    assert (path, cookie, body) == ("/login/totp", "a=b; c=d", "x=1&code={code}")
    totp = pyotp.TOTP(secret)
    assert codes.split(" ") == [totp.at((59_000_000 + n) * 30) for n in range(3)]


def test_access_log_lines_are_counted_by_path_and_status() -> None:
    log = ('127.0.0.1 - - [07/Dec/2026:18:05:26 +0000] "POST /login/totp HTTP/1.1" 303 0 "-" '
           '"wrk"\n127.0.0.1 - - [07/Dec/2026:18:05:26 +0000] "GET /verify?x=1 HTTP/1.1" 401 '
           '24 "-" "wrk"\nnot a request line\n')
    assert access_counts(log) == {("/login/totp", 303): 1, ("/verify", 401): 1}
