"""Server-side request forgery guard for webhook targets, used at submit and before each delivery.

A target must be ``http`` or ``https`` and every address its host resolves to must be public
unicast: loopback, private, link-local, unspecified, multicast, reserved, shared (CGNAT) and
cloud metadata addresses are refused, including IPv6 forms that carry an IPv4 address
(IPv4-mapped, NAT64, 6to4, Teredo).  ``socket.getaddrinfo`` does the parsing of host names *and*
of numeric forms (``2130706433``, ``0x7f000001``, ``017700000001``, ``127.1``), exactly as a
connecting client would, so no form escapes by being spelled differently.

The delivery connects to the address checked here (:class:`Target`), never to a second lookup of
the name, so a DNS answer cannot change between the check and the connection (DNS rebinding).
``allow_private`` (``GEMQ_WEBHOOK_ALLOW_PRIVATE=1``) lifts the address rules for development and
tests, but cloud metadata endpoints stay refused: no local setup needs them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

#: Cloud instance metadata services (AWS, GCP, Azure, OCI: 169.254.169.254; AWS IPv6; ECS; Alibaba).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
#: Host names of metadata services, refused before any lookup (they resolve only inside a cloud).
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
                            "instance-data.ec2.internal"})
#: NAT64's well-known prefix: the last 32 bits are the IPv4 address a packet really goes to.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """A webhook target gemq refuses to call; the message says why (safe to show the client)."""


@dataclass(frozen=True)
class Target:
    """A checked webhook target: where to connect and what to call the host on the wire."""

    #: The URL as the client gave it (IDNA-encoded host).
    url: httpx.URL
    #: The checked addresses, in the resolver's order of preference; connections go only to these.
    addresses: tuple[str, ...]

    def pinned_url(self, address: str) -> httpx.URL:
        """The URL with the host replaced by one of the checked addresses."""
        return self.url.copy_with(host=address)

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the name (and port) the client wrote."""
        return self.url.netloc.decode("ascii")

    @property
    def sni_hostname(self) -> str | None:
        """The TLS server name to send and to verify the certificate against (none for an IP host)."""
        host = self.url.raw_host.decode("ascii")
        if self.url.scheme != "https" or _literal(host) is not None:
            return None
        return host


def check_url(url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> Target:
    """Check ``url`` and resolve its host; raise :class:`UnsafeURL` when it may not receive webhooks."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeURL(f"not a valid URL ({exc})") from exc
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURL("only http and https URLs can receive webhooks")
    host = parsed.raw_host.decode("ascii").rstrip(".").lower()
    if not host:
        raise UnsafeURL("the URL has no host")
    if host in METADATA_HOSTS:
        raise UnsafeURL(f"{host} is a cloud metadata service")
    addresses = _resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80), resolve)
    for address in addresses:
        why = "a cloud metadata address" if is_metadata(address) else None if allow_private else refusal(address)
        if why:
            shown = parsed.raw_host.decode("ascii")
            where = f"{shown} is" if _literal(shown) == address else f"{shown} resolves to {address},"
            raise UnsafeURL(f"{where} {why}")
    return Target(url=parsed, addresses=tuple(str(a) for a in addresses))


def _resolve(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(f"the host {host} does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])  # drop an IPv6 scope id
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL(f"the host {host} does not resolve")
    return addresses


def is_metadata(address: IPAddress) -> bool:
    """True for a cloud metadata address, however it is spelled."""
    if isinstance(address, ipaddress.IPv6Address):
        address = _carried(address) or address
    return address in METADATA_ADDRESSES


def refusal(address: IPAddress) -> str | None:
    """Why webhooks may not go to ``address``; ``None`` for a public unicast address."""
    if is_metadata(address):
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        carried = _carried(address)
        if carried is not None:
            why = refusal(carried)  # the packet really goes to this IPv4 address
            return f"{why} ({carried} in IPv6 form)" if why else None
        for embedded in (address.sixtofour, *(address.teredo or ())):
            if embedded is not None and (why := refusal(embedded)):
                return f"{why} (the IPv4 address {embedded} inside it)"
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "a site-local address"),
        (not address.is_global, "not a public address"),
    )
    return next((why for failed, why in checks if failed), None)


def _carried(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or NAT64 address stands for."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
