"""Record real WebAuthn responses from Chromium's virtual authenticator (run by hand, once).

    .venv/bin/python -m tests.vectors.record_webauthn

Needs Debian's ``chromium`` and ``chromium-driver`` and selenium. It serves an empty page on
``http://localhost:9091`` and ``http://localhost:8080`` (WebAuthn needs a secure context:
``localhost`` qualifies, ``127.0.0.1`` is not an RP ID), asks ``authgate.factors`` for the
options, runs ``navigator.credentials.create/get`` through the DevTools virtual
authenticator, and writes one JSON file per ceremony to ``tests/vectors/webauthn/``:

* ``registration_uv`` - ES256 resident key, user verified; then ``authentication_uv``
  (allowCredentials), ``authentication_passkey`` (discoverable, carries the user handle),
  ``authentication_other_origin`` (same credential from the second origin);
* ``registration_no_uv`` / ``authentication_no_uv`` - an authenticator without user
  verification (``is_user_verified=False``), so UV is clear;
* ``registration_direct`` - ``attestation="direct"``: a ``packed`` statement with the
  virtual authenticator's real AAGUID (``none`` attestation zeroes it).

Each file holds the origin, RP ID, the challenge (base64url), the options sent and the
browser's ``PublicKeyCredential.toJSON()``. Re-recording changes every key and signature;
the tests only rely on the files' internal consistency.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.virtual_authenticator import (
    Protocol,
    Transport,
    VirtualAuthenticatorOptions,
)
from webauthn.helpers import bytes_to_base64url

from authgate.factors import authentication_options, credential_id_of, registration_options

OUT = Path(__file__).resolve().parent / "webauthn"
RP_ID = "localhost"
PORTS = (9091, 8080)
USER_ID = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

CREATE_JS = """
const [optionsJSON, done] = arguments;
const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(optionsJSON));
navigator.credentials.create({publicKey})
  .then(c => done({credential: c.toJSON()}), e => done({error: String(e)}));
"""
GET_JS = """
const [optionsJSON, done] = arguments;
const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(optionsJSON));
navigator.credentials.get({publicKey})
  .then(c => done({credential: c.toJSON()}), e => done({error: String(e)}));
"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"<!doctype html><title>authgate vectors</title><p>recording</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(port: int) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def browser() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="authgate-rec-")
    options = webdriver.ChromeOptions()
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def ceremony(driver: webdriver.Chrome, script: str, options_json: str) -> dict[str, Any]:
    result = driver.execute_async_script(script, options_json)
    if "error" in result:
        raise RuntimeError(result["error"])
    return dict(result["credential"])


def save(name: str, *, kind: str, origin: str, challenge: bytes, options_json: str,
         credential: dict[str, Any], **extra: Any) -> None:
    data = {"kind": kind, "rp_id": RP_ID, "origin": origin,
            "challenge": bytes_to_base64url(challenge), "options": json.loads(options_json),
            "credential": credential, **extra}
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print("wrote", name)


def register(driver: webdriver.Chrome, origin: str, name: str, *, uv: str,
             resident_key: str = "required", attestation: str = "none") -> bytes:
    reg = registration_options(rp_id=RP_ID, rp_name="City of Example", user_id=USER_ID,
                               user_name="alice", user_display_name="Alice Liddell",
                               exclude_credential_ids=(), user_verification=uv,  # type: ignore[arg-type]
                               attestation=attestation,  # type: ignore[arg-type]
                               resident_key=resident_key)  # type: ignore[arg-type]
    credential = ceremony(driver, CREATE_JS, reg.options_json)
    save(name, kind="registration", origin=origin, challenge=reg.challenge,
         options_json=reg.options_json, credential=credential)
    return credential_id_of(json.dumps(credential))


def authenticate(driver: webdriver.Chrome, origin: str, name: str, *, registration: str,
                 allow: list[bytes], uv: str) -> None:
    auth = authentication_options(rp_id=RP_ID, allow_credential_ids=allow,
                                  user_verification=uv)  # type: ignore[arg-type]
    credential = ceremony(driver, GET_JS, auth.options_json)
    save(name, kind="authentication", origin=origin, challenge=auth.challenge,
         options_json=auth.options_json, credential=credential, registration=registration)


def authenticator(driver: webdriver.Chrome, *, user_verified: bool) -> None:
    if getattr(driver, "_authenticator_id", None):
        driver.remove_virtual_authenticator()
    driver.add_virtual_authenticator(VirtualAuthenticatorOptions(
        protocol=Protocol.CTAP2, transport=Transport.USB, has_resident_key=True,
        # Chromium refuses every ceremony when a UV-capable authenticator fails UV, so the
        # "not verified" authenticator is one without user verification at all.
        has_user_verification=user_verified, is_user_consenting=True,
        is_user_verified=user_verified))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    first, second = (f"http://localhost:{p}" for p in PORTS)
    with serving(PORTS[0]), serving(PORTS[1]), browser() as driver:
        driver.get(first)
        authenticator(driver, user_verified=True)
        cid = register(driver, first, "registration_uv", uv="required")
        authenticate(driver, first, "authentication_uv", registration="registration_uv",
                     allow=[cid], uv="required")
        authenticate(driver, first, "authentication_passkey", registration="registration_uv",
                     allow=[], uv="required")
        driver.get(second)
        authenticate(driver, second, "authentication_other_origin",
                     registration="registration_uv", allow=[cid], uv="required")
        driver.get(first)
        authenticator(driver, user_verified=False)
        cid = register(driver, first, "registration_no_uv", uv="discouraged",
                       resident_key="discouraged")
        authenticate(driver, first, "authentication_no_uv", registration="registration_no_uv",
                     allow=[cid], uv="discouraged")
        authenticator(driver, user_verified=True)
        register(driver, first, "registration_direct", uv="preferred",
                 resident_key="discouraged", attestation="direct")


if __name__ == "__main__":
    main()
