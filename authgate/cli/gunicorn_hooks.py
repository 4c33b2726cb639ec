"""gunicorn server hooks for ``authgate serve`` (``--config python:authgate.cli.gunicorn_hooks``).

prometheus-client's multiprocess mode keeps one set of files per worker pid in
``PROMETHEUS_MULTIPROC_DIR``; a worker that exits must be marked dead, or its live gauges
(``livesum``/``liveall``) would be summed for ever. Counters and histograms of a dead worker
are kept: a scrape still counts what it did.
"""
from __future__ import annotations

from typing import Any


def child_exit(server: Any, worker: Any) -> None:  # noqa: ARG001 - gunicorn's signature
    """Run by the master when a worker has exited (gunicorn ``child_exit`` hook)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
