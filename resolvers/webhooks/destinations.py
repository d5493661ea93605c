"""Where a webhook may be sent: the guard against server-side request forgery.

A registration chooses the URL, and tradecert's servers make the request, from inside the
chamber's network. So a URL must be ``https://`` and its host must resolve only to
addresses on the public internet — never private (10/8, 172.16/12, 192.168/16, fc00::/7),
loopback, link-local (169.254/16 — the cloud metadata address — fe80::/10), shared
(100.64/10), multicast, reserved or unspecified, and never one of those wrapped in IPv6
(IPv4-mapped ``::ffff:10.0.0.1``, 6to4, Teredo, NAT64), and never IPv4-compatible (``::/96``),
SIIT-translated (``::ffff:0:0:0/96``) or local-use NAT64 (``64:ff9b:1::/48``) at all. Every
address a name resolves to counts: one bad address refuses the host.

Hosts (or addresses) listed in ``TRADECERT_WEBHOOK_ALLOW_HOSTS`` are exempt, and may use
``http://`` too: they are receivers the operator vouches for (a development receiver on
127.0.0.1, an integration host inside the chamber's network).

The check runs when an endpoint is registered and again before every delivery (DNS may
have changed since). A delivery then connects to the address that was checked, not to a
second lookup's answer (``pinned``), so a name that rebinds between the check and the
connection cannot reach an internal address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from resolvers.core.messages import Words
from resolvers.webhooks import messages as words

MAX_URL_LENGTH = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 (section 2.5.5.1), deprecated: ``::127.0.0.1``
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT (RFC 2765): ``::ffff:0:127.0.0.1``
# Ranges Python's ``is_global`` (3.11) calls global that reach no public host: the two above
# name an IPv4 address that a host or translator may hand to its IPv4 stack, and local-use
# NAT64 (RFC 8215) is, by definition, a translator of the local network — whatever it wraps.
NOT_DESTINATIONS = (IPV4_COMPATIBLE, IPV4_TRANSLATED, ipaddress.IPv6Network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks that need no DNS."""

    url: str
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    allowed: bool  # listed in TRADECERT_WEBHOOK_ALLOW_HOSTS


@dataclass(frozen=True)
class Destination:
    """A target and the addresses it resolved to, every one of them allowed."""

    target: Target
    addresses: tuple[Address, ...]


def _unwrap(address: Address) -> Address:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64, IPv4-compatible,
    SIIT-translated), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]  # the client's address
        if address in NAT64 or address in IPV4_COMPATIBLE or address in IPV4_TRANSLATED:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: Address) -> bool:
    """True for an address on the public internet: ``is_global`` (which excludes private,
    loopback, link-local, shared, reserved, unspecified and documentation ranges), not
    multicast and not in ``NOT_DESTINATIONS`` — checked on the IPv4 address an IPv6 one
    wraps, and on the wrapper itself."""
    if isinstance(address, ipaddress.IPv6Address) and any(address in network for network in NOT_DESTINATIONS):
        return False
    return all(candidate.is_global and not candidate.is_multicast for candidate in {address, _unwrap(address)})


def normalise_host(host: str) -> str:
    """A host as compared with the allow list: lower case, no brackets, an address in its
    canonical form (``0:0::1`` → ``::1``)."""
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse(url: str, allow_hosts: frozenset[str]) -> Target | Words:
    """The checks that need no network: the scheme, credentials, length, host and port.
    Returns what is wrong (a field label for INVALID) or the target."""
    if len(url) > MAX_URL_LENGTH or not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        return words.URL_HTTPS
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        return words.URL_HTTPS
    host = normalise_host(parts.hostname or "")
    if not host or parts.username is not None or parts.password is not None or "@" in parts.netloc or parts.fragment:
        return words.URL_HTTPS
    allowed = host in allow_hosts
    if parts.scheme != "https" and not (allowed and parts.scheme == "http"):
        return words.URL_HTTPS
    if port == 0:
        return words.URL_HTTPS
    literal = _literal(host)
    if literal is None and not all(label and len(label) <= 63 for label in host.split(".")):
        return words.URL_HTTPS
    if literal is not None and not allowed and not is_public(literal):
        return words.URL_NOT_ALLOWED
    return Target(url=url, scheme=parts.scheme, host=host, port=port or (443 if parts.scheme == "https" else 80),
                  allowed=allowed)


async def resolve(target: Target) -> tuple[Address, ...]:
    """Every address the host resolves to (an address literal: itself); empty when it does not resolve."""
    literal = _literal(target.host)
    if literal is not None:
        return (literal,)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return ()
    found: list[Address] = []
    for family, *_rest, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 zone
            if address not in found:
                found.append(address)
    return tuple(found)


async def check(url: str, allow_hosts: frozenset[str]) -> Destination | Words:
    """The whole guard: ``parse``, then every address the host resolves to must be public,
    unless the host — or that address — is in ``allow_hosts``."""
    target = parse(url, allow_hosts)
    if isinstance(target, Words):
        return target
    addresses = await resolve(target)
    if not addresses:
        return words.URL_UNRESOLVED
    if not target.allowed and not all(is_public(a) or str(a) in allow_hosts for a in addresses):
        return words.URL_NOT_ALLOWED
    return Destination(target, addresses)


def pinned(destination: Destination) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL naming the checked address, headers, httpx extensions) for a request that goes
    to the address the guard checked: the Host header and TLS server name stay the host's,
    so virtual hosting and certificate checks work as for the name."""
    target = destination.target
    address = destination.addresses[0]
    parts = urlsplit(target.url)
    literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = f"{literal}:{target.port}"
    url = parts._replace(netloc=netloc).geturl()
    default_port = 443 if target.scheme == "https" else 80
    bracketed = f"[{target.host}]" if ":" in target.host else target.host
    host_header = bracketed if target.port == default_port else f"{bracketed}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" and _literal(target.host) is None else {}
    return url, {"Host": host_header}, extensions
