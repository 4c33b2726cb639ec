"""SIGHUP asks for a policy reload; the next request performs it. The handler takes no lock,
so a signal landing while this thread holds the runtime's lock cannot deadlock it."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from authgate.web import _reload_on_sighup


@pytest.fixture
def restore_sighup() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


def test_the_handler_only_asks_and_the_next_look_reloads(services, restore_sighup) -> None:  # type: ignore[no-untyped-def]
    policies = services.policies
    policies.maybe_reload()  # the first look of this second: nothing changed
    reloads: list[object] = []
    policies._on_reload = reloads.append
    _reload_on_sighup(policies)
    handler = signal.getsignal(signal.SIGHUP)
    assert callable(handler)
    with policies._lock:  # as if the signal interrupted a reload in progress
        worker = threading.Thread(target=handler, args=(signal.SIGHUP, None), daemon=True)
        worker.start()
        worker.join(timeout=5)
        assert not worker.is_alive(), "the SIGHUP handler waited for the policy lock"
    assert reloads == []  # nothing reloaded inside the handler
    result = policies.maybe_reload()  # the next request, within the same second
    assert result is not None and not result.changed and not result.problems
    assert len(reloads) == 1
    assert policies.maybe_reload() is None  # the request is used up
