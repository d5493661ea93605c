"""The destination guard on its own: which addresses are public, which URLs are refused before
any lookup, what the allow list exempts, and where a pinned request goes."""

from __future__ import annotations

import ipaddress

import pytest

from resolvers.core.settings import Settings
from resolvers.webhooks import destinations
from resolvers.webhooks import messages as words

NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True),
    ("93.184.215.14", True),
    ("2606:4700:4700::1111", True),
    ("127.0.0.1", False),  # loopback
    ("127.255.255.254", False),
    ("10.0.0.1", False),  # private
    ("172.16.5.4", False),
    ("192.168.1.1", False),
    ("169.254.169.254", False),  # link-local: the cloud metadata address
    ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
    ("0.0.0.0", False),  # unspecified
    ("255.255.255.255", False),  # broadcast
    ("240.0.0.1", False),  # reserved
    ("224.0.0.1", False),  # multicast
    ("192.0.2.1", False),  # documentation
    ("::1", False),
    ("::", False),
    ("fe80::1", False),  # link-local
    ("fc00::1", False),  # unique local
    ("fd12:3456::1", False),
    ("ff02::1", False),  # multicast
    ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
    ("::ffff:10.0.0.1", False),
    ("::ffff:169.254.169.254", False),
    ("2002:0a00:0001::1", False),  # 6to4 of 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo of 10.0.0.1
    ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
    ("64:ff9b::808:808", True),  # NAT64 of a public address: the well-known prefix reaches the internet
    ("::127.0.0.1", False),  # IPv4-compatible (::/96, deprecated) of loopback
    ("::7f00:1", False),  # the same, written in hex
    ("::8.8.8.8", False),  # IPv4-compatible of a public address: deprecated, nobody is reached this way
    ("::ffff:0:7f00:1", False),  # SIIT IPv4-translated (::ffff:0:0:0/96) of loopback
    ("::ffff:0:808:808", False),  # SIIT of a public address: a translator's range, not a destination
    ("64:ff9b:1::7f00:1", False),  # local-use NAT64 (64:ff9b:1::/48, RFC 8215) of loopback
    ("64:ff9b:1::808:808", False),  # local-use NAT64 is the local network's translator, whatever it wraps
])
def test_only_addresses_on_the_public_internet_are_public(address, public):
    assert destinations.is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("url", [
    "http://example.com/hook",  # not https
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "https://user:pass@example.com/hook",  # credentials
    "https://user@example.com/hook",
    "https://example.com/hook#fragment",
    "https:///hook",  # no host
    "https://example.com:0/hook",
    "https://example.com:99999/hook",
    "https://exa mple.com/hook",
    "https://例え.jp/hook",  # not ASCII: send the punycode form
    "https://example.com/" + "a" * 2048,  # too long
    "https://" + "a" * 64 + ".com/",  # a label longer than DNS allows
])
def test_malformed_or_non_https_urls_are_refused_before_any_lookup(url):
    assert destinations.parse(url, NONE) == words.URL_HTTPS


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook", "https://[::ffff:127.0.0.1]/hook", "https://0.0.0.0/hook", "https://100.64.0.1/",
    "https://[::127.0.0.1]/", "https://[::7f00:1]/", "https://[::ffff:0:7f00:1]/", "https://[64:ff9b:1::7f00:1]/",
    "https://[::a9fe:a9fe]/latest/meta-data", "https://[64:ff9b:1::a00:1]/hook",
])
def test_internal_address_literals_are_refused_before_any_lookup(url):
    assert destinations.parse(url, NONE) == words.URL_NOT_ALLOWED


async def test_a_name_that_resolves_to_loopback_is_refused():
    assert await destinations.check("https://localhost/hook", NONE) == words.URL_NOT_ALLOWED


async def test_a_name_that_does_not_resolve_is_refused():
    assert await destinations.check("https://nothing-here.invalid/hook", NONE) == words.URL_UNRESOLVED


async def test_listed_hosts_are_exempt_and_may_use_http():
    allowed = Settings.from_env({"TRADECERT_WEBHOOK_ALLOW_HOSTS": " 127.0.0.1, LocalHost ,[::1]"}).webhook_allow_hosts
    assert allowed == {"127.0.0.1", "localhost", "::1"}
    for url in ("http://127.0.0.1:8080/hook", "https://localhost/hook", "http://[::1]:9000/"):
        found = await destinations.check(url, allowed)
        assert isinstance(found, destinations.Destination), url
    # an address listed exempts a name resolving only to it, over https
    found = await destinations.check("https://localhost/hook", frozenset({"127.0.0.1", "::1"}))
    assert isinstance(found, destinations.Destination)
    # what is not listed stays refused
    assert await destinations.check("http://10.0.0.1/", allowed) == words.URL_HTTPS
    assert await destinations.check("https://10.0.0.1/", allowed) == words.URL_NOT_ALLOWED


def test_a_bad_allow_list_refuses_to_start():
    with pytest.raises(ValueError, match="TRADECERT_WEBHOOK_ALLOW_HOSTS"):
        Settings.from_env({"TRADECERT_WEBHOOK_ALLOW_HOSTS": "http://127.0.0.1/"})


def test_a_pinned_request_goes_to_the_checked_address_under_the_hosts_name():
    target = destinations.Target("https://hooks.example.com/in?x=1", "https", "hooks.example.com", 443, False)
    url, headers, extensions = destinations.pinned(
        destinations.Destination(target, (ipaddress.ip_address("93.184.215.14"),)))
    assert url == "https://93.184.215.14:443/in?x=1"
    assert headers == {"Host": "hooks.example.com"} and extensions == {"sni_hostname": "hooks.example.com"}
    target = destinations.Target("http://[::1]:9000/in", "http", "::1", 9000, True)
    url, headers, extensions = destinations.pinned(destinations.Destination(target, (ipaddress.ip_address("::1"),)))
    assert (url, headers, extensions) == ("http://[::1]:9000/in", {"Host": "[::1]:9000"}, {})
