"""RFC 5424 syslog messages for audit records, and RFC 6587 octet-counting frames.

The structured data carries every field; PARAM-VALUE escapes ``"``, ``\\`` and ``]``
(RFC 5424 §6.3.3). Control characters were neutralised when the event was made, so a value
never breaks the frame (log injection, ASVS 7.3.1). Each value is cut to its own limit
(``_PARAMS``; the database keeps them whole), but the total is not budgeted: a message may
exceed the 2048 octets RFC 5426 §3.2 says UDP receivers SHOULD accept (about 3 KiB at most),
so TCP with RFC 6587 octet counting is the recommended transport.

The free-text MSG after the structured data is for people and for SIEM text parsers that
split ``key=value`` pairs. Its values are percent-encoded (RFC 3986 §2.1) so none holds a
space, ``=`` or quote: a user name like ``bob host=x reason=password_ok`` cannot forge
another pair (issue 16 item 6). The severity is the event's (``catalog.severity``).
"""
from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from authgate.audit.catalog import severity as severity_of
from authgate.audit.render import iso_time
from authgate.storage.audit_rows import ROW_COLUMNS

FACILITIES = {"kern": 0, "user": 1, "daemon": 3, "auth": 4, "authpriv": 10,
              **{f"local{n}": 16 + n for n in range(8)}}
#: what a MSG value may show as is: no space, ``=``, quote, backslash, ``,`` or ``;``
_MSG_SAFE = "@:/*#[]+!()"
_MSG_PLAIN = re.compile(r"[A-Za-z0-9_.~@:/*#\[\]+!()-]+\Z")
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")
_PARAMS = (("id", "id", 20), ("chain", "chain_id", 32), ("seq", "seq", 20),
           ("key", "key_id", 32), ("outcome", "outcome", 16), ("reason", "reason", 64),
           ("user", "username", 256), ("ip", "client_ip", 64), ("host", "host", 256),
           ("method", "method", 16), ("path", "path", 512), ("ua", "user_agent", 256),
           ("rule", "rule_id", 128), ("policy", "policy_digest", 64),
           ("request", "request_id", 64), ("detail", "detail", 512), ("mac", "mac", 64))
_INDEX = {name: i for i, name in enumerate(ROW_COLUMNS)}


def _token(text: str, limit: int) -> str:
    """A header field: printable US-ASCII only, ``-`` when empty (RFC 5424 NILVALUE)."""
    return _NOT_PRINTABLE.sub("_", text)[:limit] or "-"


def msg_value(text: str) -> str:
    """A MSG ``key=value`` value: percent-encoded, ``-`` when empty (never two tokens)."""
    if _MSG_PLAIN.match(text):  # the usual case: nothing to encode
        return text
    return quote(text, safe=_MSG_SAFE) or "-"


def sd_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


@dataclass(frozen=True)
class SyslogFormat:
    facility: str = "authpriv"
    app_name: str = "authgate"
    sd_id: str = "audit@32473"
    hostname: str = ""

    def message(self, row: Sequence[Any], *, procid: int | None = None) -> str:
        outcome = str(row[_INDEX["outcome"]])
        event = str(row[_INDEX["event"]])
        fields = {name: str(row[_INDEX[col]] or "") for name, col in (
            ("user", "username"), ("host", "host"), ("reason", "reason"))}
        pri = FACILITIES[self.facility] * 8 + severity_of(event, outcome, fields["reason"])
        header = " ".join((
            f"<{pri}>1", iso_time(row[_INDEX["ts"]]),
            _token(self.hostname or socket.gethostname(), 255), _token(self.app_name, 48),
            _token(str(os.getpid() if procid is None else procid), 128), _token(event, 32)))
        params = " ".join(f'{name}="{sd_escape(str(row[_INDEX[col]])[:limit])}"'
                          for name, col, limit in _PARAMS)
        text = " ".join([msg_value(event), msg_value(outcome),
                         *(f"{name}={msg_value(value)}" for name, value in fields.items())])
        return f"{header} [{_token(self.sd_id, 32)} {params}] {text}"


def octet_frame(message: str) -> bytes:
    """RFC 6587 §3.4.1 octet counting: ``MSG-LEN SP SYSLOG-MSG``."""
    data = message.encode()
    return str(len(data)).encode() + b" " + data
