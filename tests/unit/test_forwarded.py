"""Trusted-proxy handling (ASVS 4.1.3): forwarded headers count only from trusted peers."""
from __future__ import annotations

import ipaddress

import pytest

from authgate.access.proxy_headers import TrustedProxies, client_ip, original_resource, split_host
from authgate.core.errors import UntrustedRequest

TRUSTED = TrustedProxies.parse(["127.0.0.1/32", "10.0.0.0/24", "::1/128"])
ip = ipaddress.ip_address


@pytest.mark.parametrize("peer,xff,expected", [
    ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: its XFF is ignored
    ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
    ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # left part is client-written
    ("127.0.0.1", "198.51.100.7, 10.0.0.5", "198.51.100.7"),  # right to left through trusted
    ("127.0.0.1", None, "127.0.0.1"),
    ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"),
    ("::1", "2001:db8::1", "2001:db8::1"),
    ("127.0.0.1", "10.0.0.1, 10.0.0.2", "10.0.0.1"),  # all trusted: the left-most
])
def test_client_ip(peer: str, xff: str | None, expected: str) -> None:
    assert client_ip(peer, xff, TRUSTED) == ip(expected)


def test_garbage_in_trusted_chain_gives_no_address() -> None:
    assert client_ip("127.0.0.1", "not-an-ip", TRUSTED) is None


def test_resource_from_nginx_headers() -> None:
    r = original_resource({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "Permits.City.Test",
                           "X-Original-URI": "/a/b?x=1&y=2", "X-Original-Method": "post"},
                          peer_trusted=True)
    assert (r.scheme, r.host, r.port, r.path, r.query, r.method) == (
        "https", "permits.city.test", None, "/a/b", "x=1&y=2", "POST")
    assert r.url == "https://permits.city.test/a/b?x=1&y=2"


def test_resource_from_traefik_headers() -> None:
    r = original_resource({"X-Forwarded-Proto": "http", "X-Forwarded-Host": "localhost:8080",
                           "X-Forwarded-Uri": "/p", "X-Forwarded-Method": "GET"},
                          peer_trusted=True)
    assert (r.host, r.port, r.path) == ("localhost", 8080, "/p")


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-Host": "a.city.test", "X-Original-URI": "/"},  # no proto
    {"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "a", "X-Original-URI": "/"},
    {"X-Forwarded-Proto": "https", "X-Original-URI": "/"},  # no host
    {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "a.city.test"},  # no uri
    {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "a.city.test", "X-Original-URI": "//x"},
    {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "u@a.city.test", "X-Original-URI": "/"},
    {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "a b", "X-Original-URI": "/"},
    {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "a.city.test", "X-Original-URI": "/",
     "X-Original-Method": "BREW"},
])
def test_bad_forwarded_headers_refused(headers: dict[str, str]) -> None:
    with pytest.raises(UntrustedRequest):
        original_resource(headers, peer_trusted=True)


def test_untrusted_peer_refused_even_with_good_headers() -> None:
    with pytest.raises(UntrustedRequest):
        original_resource({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "a.city.test",
                           "X-Original-URI": "/"}, peer_trusted=False)


def test_split_host_ipv6() -> None:
    assert split_host("[::1]:8080") == ("::1", 8080)
