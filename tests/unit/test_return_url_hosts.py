"""Issue 14 item 5: the return-URL host is a plain DNS name with an optional port 1-65535;
``%``-escapes, ``;``, port 0 and everything else a browser might read differently are refused."""
from __future__ import annotations

import pytest

from authgate.access.return_url import validate_return_url
from authgate.core.errors import RedirectRefused

DOMAINS = ("*.city.test", "city.test", "localhost")


@pytest.mark.parametrize("url", [
    "https://permits%2ecity.test/",
    "https://%70ermits.city.test/",
    "https://evil.example%2f.city.test/",
    "https://permits.city.test%00/",
    "https://permits.city.test;x/",
    "https://permits.city.test;.evil.example/",
    "https://permits.city.test:0/",
    "https://permits.city.test:00/",
    "https://permits.city.test:65536/",
    "https://permits.city.test:-1/",
    "https://permits.city.test:+443/",
    "https://permits.city.test:44 3/",
    "https://permits.city.test:443:443/",
    "https://permits.city.test:/",
    "https://permits.city.test./",
    "https://permits..city.test/",
    "https://-permits.city.test/",
    "https://permits_x.city.test/",
    "https://permits.city.test!/",
    "https://permits.city.test$/",
    "https://[permits.city.test]/",
    "https://" + "a" * 64 + ".city.test/",
    "http://localhost:0/",
])
def test_host_tricks_refused(url: str) -> None:
    with pytest.raises(RedirectRefused):
        validate_return_url(url, allowed_domains=DOMAINS, allow_http_localhost=True)


@pytest.mark.parametrize("url,expected", [
    ("https://permits.city.test/", "https://permits.city.test/"),
    ("https://PERMITS.City.Test:8443/a;b?c=%41", "https://permits.city.test:8443/a;b?c=%41"),
    ("https://permits.city.test:1/", "https://permits.city.test:1/"),
    ("https://permits.city.test:65535/", "https://permits.city.test:65535/"),
    ("https://a-b.city.test/x", "https://a-b.city.test/x"),
    ("http://localhost:8080/p", "http://localhost:8080/p"),
])
def test_plain_hosts_accepted(url: str, expected: str) -> None:
    assert validate_return_url(url, allowed_domains=DOMAINS,
                               allow_http_localhost=True) == expected
