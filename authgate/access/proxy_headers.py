"""What the reverse proxy says about the original request, believed only from trusted peers.

ASVS 4.1.3: ``X-Forwarded-*`` and ``X-Original-*`` from any other peer are ignored, and the
client address is read right to left through trusted hops only (the first untrusted hop is
the client; anything to its left was written by the client and may be forged).
"""
from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authgate.access.return_url import host_matches
from authgate.core.errors import UntrustedRequest
from authgate.core.values import Resource

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_MAX_URI = 8192
_DEFAULT_PORTS = {"https": 443, "http": 80}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}


_SEEN_LIMIT = 4096  # addresses come from headers: keep the cache bounded


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[IPNetwork, ...]
    #: verdict per address seen (asked three times per ``/verify``); only the address is
    #: hashed, never the networks
    _seen: dict[IPAddress, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, cidrs: Iterable[str]) -> TrustedProxies:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def trusts(self, ip: IPAddress | None) -> bool:
        if ip is None:
            return False
        found = self._seen.get(ip)
        if found is None:
            if len(self._seen) >= _SEEN_LIMIT:
                self._seen.clear()
            found = self._seen[ip] = any(ip in net for net in self.networks)
        return found


@functools.lru_cache(maxsize=4096)
def parse_ip(text: str | None) -> IPAddress | None:
    """An address from a header or the socket (cached: the same few proxies and clients
    repeat on every request)."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def client_ip(peer: str | None, forwarded_for: str | None,
              trusted: TrustedProxies) -> IPAddress | None:
    """The client's address: the right-most hop not in ``trusted`` (or the peer itself)."""
    peer_ip = parse_ip(peer)
    if not trusted.trusts(peer_ip) or not forwarded_for:
        return peer_ip
    hops = [h.strip() for h in forwarded_for.split(",")]
    for hop in reversed(hops):
        ip = parse_ip(hop)
        if ip is None:
            return None  # garbage in a trusted chain: unknown client, not a guess
        if not trusted.trusts(ip):
            return ip
    return parse_ip(hops[0])


def original_resource(headers: Mapping[str, str], *, peer_trusted: bool) -> Resource:
    """The request a protected app received, from nginx (X-Original-*) or Traefik/Caddy
    (X-Forwarded-Uri/Method). Raises ``UntrustedRequest`` when it cannot be known."""
    if not peer_trusted:
        raise UntrustedRequest("forward-auth request from an untrusted peer")
    proto = (headers.get("X-Forwarded-Proto") or "").strip().lower()
    host_header = (headers.get("X-Forwarded-Host") or "").split(",")[0].strip()
    uri = headers.get("X-Original-URI") or headers.get("X-Forwarded-Uri") or ""
    method = (headers.get("X-Original-Method") or headers.get("X-Forwarded-Method")
              or "GET").strip().upper()
    if proto not in ("http", "https"):
        raise UntrustedRequest("missing or bad X-Forwarded-Proto")
    if not uri.startswith("/") or uri.startswith("//") or len(uri) > _MAX_URI:
        raise UntrustedRequest("missing or bad original URI")
    if method not in _METHODS:
        raise UntrustedRequest("unknown original method")
    host, port = split_host(host_header)
    port = forwarded_port(headers.get("X-Forwarded-Port"), proto=proto, default=port)
    path, _, query = uri.partition("#")[0].partition("?")
    return Resource(scheme=proto, host=host, port=port, path=path or "/", query=query,
                    method=method)


def forwarded_port(value: str | None, *, proto: str, default: int | None) -> int | None:
    """``X-Forwarded-Port`` (nginx: ``$server_port``, the port that accepted the request)
    wins over a port in ``X-Forwarded-Host``; the scheme's default port is left out so
    return URLs stay canonical."""
    if value is None:
        return default
    text = value.strip()
    if not text.isdigit() or not text.isascii() or not 0 < int(text) < 65536:
        raise UntrustedRequest("bad X-Forwarded-Port")
    port = int(text)
    return None if _DEFAULT_PORTS.get(proto) == port else port


class UnprotectedHost(UntrustedRequest):
    """The proxy asked about a host authgate does not protect (``server.protected_domains``).

    Defence in depth for issue #14 finding 1: a proxy that forwards the client's ``Host``
    instead of the host it routed on is refused here rather than judged for that host."""

    reason = "unprotected_host"


def require_protected_host(resource: Resource, *, protected_domains: tuple[str, ...]) -> None:
    """Raises :class:`UnprotectedHost` unless the judged host is one authgate protects."""
    if not _protected(resource.host, protected_domains):
        raise UnprotectedHost("forwarded host is not in server.protected_domains")


@functools.lru_cache(maxsize=1024)
def _protected(host: str, protected_domains: tuple[str, ...]) -> bool:
    return host_matches(host, protected_domains)


@functools.lru_cache(maxsize=1024)
def split_host(value: str) -> tuple[str, int | None]:
    """``Host`` header → (lower-case host, port). Raises on anything that is not a host."""
    try:
        parts = urlsplit(f"//{value}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UntrustedRequest("bad forwarded host") from exc
    if not host or parts.username is not None or parts.path or len(host) > 253:
        raise UntrustedRequest("missing or bad forwarded host")
    if not all(c.isalnum() or c in ".-:_" for c in host) or not host.isascii():
        raise UntrustedRequest("bad forwarded host")
    return host.lower(), port
