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


# -- issue 14 item 5: a broken or unreadable set on SIGHUP keeps the last good one --------
def _reload_events(services):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from authgate.storage.tables import audit_events

    with services.engine.connect() as conn:
        return conn.execute(select(audit_events).where(
            audit_events.c.event == "policy.reload")).mappings().all()


@pytest.fixture
def own_policies(tmp_path, users_file, clock):  # type: ignore[no-untyped-def]
    """Services on a private copy of the test policies, so a test can break them."""
    import shutil

    from authgate.composition.root import build_services
    from authgate.storage.engine import migrate
    from tests.conftest import TEST_POLICIES, make_settings

    directory = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, directory)
    settings = make_settings(tmp_path, users_file, policy={"path": str(directory),
                                                           "require_approval": False})
    migrate(settings.storage.url)
    return build_services(settings, clock=clock), directory


def test_sighup_with_a_broken_policy_keeps_the_last_good_set(own_policies, restore_sighup,
                                                             caplog) -> None:  # type: ignore[no-untyped-def]
    services, directory = own_policies
    good = services.policies.current.digest
    (directory / "50-broken.yaml").write_text("version: 1\nrules: [{id: x, levle: mfa}]\n")
    _reload_on_sighup(services.policies)
    signal.getsignal(signal.SIGHUP)(signal.SIGHUP, None)  # type: ignore[operator]
    with caplog.at_level("ERROR", logger="authgate.policy"):
        result = services.policies.maybe_reload()
    assert result is not None and result.problems and services.policies.current.digest == good
    assert any(r.levelname == "ERROR" and "last good" in r.getMessage() for r in caplog.records)
    row = _reload_events(services)[-1]
    assert (row["outcome"], row["reason"], row["policy_digest"]) == ("deny", "policy_rejected",
                                                                     good)


def test_an_unreadable_policy_set_on_reload_keeps_the_last_good_set(
        own_policies, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    """A permission error (root reads every file, so it is raised here) never escapes."""
    import authgate.policy.live as live

    services, _directory = own_policies
    good = services.policies.current.digest

    def unreadable(_directory):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(live, "load_policy_set", unreadable)
    with caplog.at_level("ERROR", logger="authgate.policy"):
        result = services.policies.reload()
    assert services.policies.current.digest == good
    assert "Permission denied" in result.problems[0]
    assert _reload_events(services)[-1]["reason"] == "policy_rejected"


def test_a_reload_whose_audit_fails_still_keeps_serving(own_policies, caplog) -> None:  # type: ignore[no-untyped-def]
    services, directory = own_policies
    (directory / "50-broken.yaml").write_text("not: [valid\n")

    def audit_down(_result):  # type: ignore[no-untyped-def]
        raise RuntimeError("audit store down")

    services.policies._on_reload = audit_down
    with caplog.at_level("CRITICAL", logger="authgate.policy"):
        result = services.policies.reload()
    assert result.problems
    assert any(r.levelname == "CRITICAL" for r in caplog.records)
