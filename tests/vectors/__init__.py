"""The one loader for test vectors kept as data files (style rule 13).

* ``rfc6238.json`` - RFC 6238 Appendix B TOTP vectors (SHA-1/256/512, 8 digits).
* ``webauthn/*.json`` - real responses from Chromium's virtual authenticator, recorded by
  ``tests/vectors/record_webauthn.py`` (run by hand; see its docstring).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from webauthn.helpers import base64url_to_bytes

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class TotpVector:
    time: int
    algorithm: str
    code: str
    secret: str  # base32, as authgate stores it
    digits: int
    period: int


@dataclass(frozen=True)
class WebAuthnVector:
    name: str
    kind: str  # "registration" | "authentication"
    rp_id: str
    origin: str
    challenge: bytes
    credential: dict[str, Any]
    registration: str | None  # for an assertion: the registration vector it belongs to

    @property
    def credential_json(self) -> str:
        return json.dumps(self.credential)


@cache
def _json(relative: str) -> Any:
    return json.loads((HERE / relative).read_text())


def rfc6238_vectors() -> list[TotpVector]:
    data = _json("rfc6238.json")
    secrets = {alg: base64.b32encode(seed.encode("ascii")).decode("ascii")
               for alg, seed in data["seeds_ascii"].items()}
    return [TotpVector(time=v["time"], algorithm=v["algorithm"], code=v["code"],
                       secret=secrets[v["algorithm"]], digits=data["digits"],
                       period=data["period"]) for v in data["vectors"]]


def webauthn_vector(name: str) -> WebAuthnVector:
    data = _json(f"webauthn/{name}.json")
    return WebAuthnVector(name=name, kind=data["kind"], rp_id=data["rp_id"],
                          origin=data["origin"], challenge=base64url_to_bytes(data["challenge"]),
                          credential=data["credential"], registration=data.get("registration"))


def webauthn_vector_names() -> list[str]:
    return sorted(p.stem for p in (HERE / "webauthn").glob("*.json"))
