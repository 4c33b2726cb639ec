"""Failover, outage and recovery, threads and forked workers, against the real DC."""
from __future__ import annotations

import multiprocessing
import socket
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from authgate.core.errors import DirectoryUnavailable
from authgate.directory.ldap import LdapDirectory
from tests.ad import samba

pytestmark = pytest.mark.integration


def _median_login_ms(d: LdapDirectory, password: str, n: int = 15) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        d.authenticate(username="bob", password=password)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _first_login_ms(d: LdapDirectory, password: str) -> float:
    t = time.perf_counter()
    assert d.authenticate(username="bob", password=password).username == "bob"
    return (time.perf_counter() - t) * 1000


def test_failover_from_a_refusing_dc(make_directory, ad) -> None:
    """First URL a dead port: the first login pays one refused connect, later ones nothing."""
    password = ad.password("bob")
    direct = make_directory()
    direct_first = _first_login_ms(direct, password)
    baseline = _median_login_ms(direct, password)
    d = make_directory(urls=("ldaps://localhost:1", ad.ldaps_url))
    first = _first_login_ms(d, password)
    after = _median_login_ms(d, password)
    print(f"\nfailover (refused port): first login {first:.1f} ms vs {direct_first:.1f} ms without "
          f"the dead DC (added {first - direct_first:.1f} ms); next logins {after:.1f} ms vs "
          f"{baseline:.1f} ms")
    assert first < 2000 and after < baseline * 2 + 5


@pytest.fixture
def silent_dc() -> Iterator[str]:
    """A DC that accepts TCP and never answers (hung process, full backlog on a firewall)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"ldaps://127.0.0.1:{s.getsockname()[1]}"


def test_failover_from_a_silent_dc(make_directory, ad, silent_dc: str) -> None:
    d = make_directory(urls=(silent_dc, ad.ldaps_url), connect_timeout=0.5)
    t = time.perf_counter()
    assert d.authenticate(username="bob", password=ad.password("bob")).username == "bob"
    first = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    d.authenticate(username="bob", password=ad.password("bob"))
    second = (time.perf_counter() - t) * 1000
    print(f"\nfailover (silent DC, connect_timeout 0.5 s): first login {first:.0f} ms, "
          f"next {second:.0f} ms")
    assert first < 2000 and second < 400


def test_dc_stopped_then_started_again(make_directory, ad) -> None:
    d = make_directory()
    d.authenticate(username="bob", password=ad.password("bob"))  # pooled connections exist
    samba.stop(ad.dir)
    try:
        t = time.perf_counter()
        with pytest.raises(DirectoryUnavailable):
            d.authenticate(username="bob", password=ad.password("bob"))
        with pytest.raises(DirectoryUnavailable):
            d.check()
        down_ms = (time.perf_counter() - t) * 1000
    finally:
        t = time.perf_counter()
        samba.run_script("start", ad.dir)
        restart_ms = (time.perf_counter() - t) * 1000
    assert d.authenticate(username="bob", password=ad.password("bob")).username == "bob"
    d.check()
    print(f"\noutage: refused in {down_ms:.1f} ms (login + check); DC restart {restart_ms:.0f} ms;"
          " the same LdapDirectory works again")
    assert down_ms < 1000


def test_threads_share_the_directory(directory: LdapDirectory, ad) -> None:
    def login(i: int) -> str:
        user = f"user{(i % 10) + 1:02d}"
        return directory.authenticate(username=user, password=ad.password(user)).username
    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(login, range(64)))
    assert names == [f"user{(i % 10) + 1:02d}" for i in range(64)]


def _child_login(d: LdapDirectory, password: str, queue: multiprocessing.Queue) -> None:
    try:
        queue.put(d.authenticate(username="bob", password=password).username)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))


def test_forked_worker_reopens_connections(directory: LdapDirectory, ad) -> None:
    """Like gunicorn's preload: the parent connected before fork; the child must not reuse
    the parent's TLS sockets, and the parent must keep working afterwards."""
    directory.authenticate(username="bob", password=ad.password("bob"))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_child_login, args=(directory, ad.password("bob"), queue))
                for _ in range(2)]
    for child in children:
        child.start()
    results = [queue.get(timeout=20) for _ in children]
    for child in children:
        child.join(timeout=20)
    assert results == ["bob", "bob"]
    assert directory.authenticate(username="bob", password=ad.password("bob")).username == "bob"
