"""Login names in the audit trail: what a user typed is kept only once the directory knew it.

People type their password into the username field; storing that text would keep a secret in
the trail and in every SIEM copy (ASVS 7.1.1, NIST SP 800-63B 5.1.1.2 "never log secrets").
So a name the directory did not confirm (unknown, refused before the bind, malformed) is
recorded as a pseudonym: a short masked prefix, a length bucket and an HMAC-SHA256 of the
name under a subkey of the audit chain key (HKDF, RFC 5869; ``core/keys.derive_subkey``).
The same unknown name always gives the same pseudonym (under one chain key), so an auditor
still counts a spray; ``authgate audit user-hash NAME`` gives the pseudonym of a name to
search for. A confirmed name is kept as the directory's canonical form (docs/audit.md).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from functools import lru_cache

from authgate.audit.chain import Keyring
from authgate.core.keys import derive_subkey

PURPOSE = b"audit-username"
#: 96 bits: no collision between the names one trail will ever see
DIGEST_HEX = 24
#: ``jo***(8-15)#<hex>``: ``*`` is not allowed in an AD logon name (MS-ADTS
#: 3.1.1.3.1.10.3), so a pseudonym is never a real account's name; nothing in it needs
#: escaping in syslog structured data, MSG text, JSON or CSV.
PSEUDONYM = re.compile(r"^[a-z0-9]{0,2}\*\*\*\((?:\d+-\d+|\d+\+)\)#[0-9a-f]{"
                       + str(DIGEST_HEX) + "}$")
_BUCKETS = ((3, "1-3"), (7, "4-7"), (15, "8-15"), (31, "16-31"))


def length_bucket(length: int) -> str:
    """The name's length, rounded to a bucket (the exact length would narrow a password)."""
    return next((label for top, label in _BUCKETS if length <= top), "32+")


def _prefix(name: str) -> str:
    """At most two leading letters or digits, fewer for a short name; other characters are
    never shown (they would help guess a password, or forge SIEM text)."""
    shown = 2 if len(name) >= 8 else 1 if len(name) >= 4 else 0
    head = name[:shown]
    return head if head.isascii() and head.isalnum() else ""


@lru_cache(maxsize=8)
def _subkey(chain_key: bytes) -> bytes:
    return derive_subkey(chain_key.hex(), PURPOSE)


@dataclass(frozen=True)
class NameMask:
    """Turns a login name the directory did not confirm into its pseudonym."""

    key: bytes = field(repr=False)

    @classmethod
    def for_keyring(cls, keyring: Keyring, key_id: str | None = None) -> NameMask:
        """The mask under the current chain key (or an earlier one, for old records)."""
        return cls(_subkey(keyring.keys[key_id or keyring.current_id]))

    def pseudonym(self, name: str) -> str:
        """``jo***(8-15)#<hmac>`` for the normalised (trimmed, lower-cased) name."""
        digest = hmac.new(self.key, name.encode("utf-8", "surrogatepass"),
                          hashlib.sha256).hexdigest()[:DIGEST_HEX]
        return f"{_prefix(name)}***({length_bucket(len(name))})#{digest}"

    def recorded(self, name: str, *, confirmed: bool) -> str:
        """What the trail keeps: the name when the directory confirmed it, else the
        pseudonym (an empty name stays empty)."""
        return name if confirmed or not name else self.pseudonym(name)


def is_pseudonym(text: str) -> bool:
    return PSEUDONYM.match(text) is not None
