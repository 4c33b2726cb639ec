"""Server-side sessions: issue, look up, raise, end; and the periodic re-read of the
account from the directory.
"""
from __future__ import annotations
