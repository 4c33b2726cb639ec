"""``AuditLog``: stamps events with the clock and stores them before the response is sent.

A failed write raises ``StorageError``; the web layer then denies (ASVS 7.1.3, 4.1.5).
"""
from __future__ import annotations

import dataclasses
import logging

from authgate.clock import Clock
from authgate.model import AuditEvent, Outcome
from authgate.storage.interfaces import AuditStore

_log = logging.getLogger("authgate.audit")


class AuditLog:
    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record(self, event: AuditEvent) -> int:
        stamped = dataclasses.replace(event, time=self._clock.now())
        event_id = self._store.append(stamped)
        if stamped.outcome in (Outcome.ERROR,):
            _log.warning("audit %s %s reason=%s", stamped.event, stamped.outcome.value,
                         stamped.reason)
        return event_id
