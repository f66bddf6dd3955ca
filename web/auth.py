"""API keys: ``Authorization: Bearer <key>`` on every /v1 route, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

from flask import g, request

from web.context import ctx
from web.errors import ApiError


def authenticate() -> None:
    """Set ``g.tenant`` for a /v1 request, or refuse it with 401."""
    if not request.path.startswith("/v1/"):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": 'Bearer realm="gemq"'})
    tenant = find_tenant(token.strip(), ctx().settings.api_keys)
    if tenant is None:
        raise ApiError(401, "invalid API key", headers={"WWW-Authenticate": 'Bearer realm="gemq"'})
    g.tenant = tenant


def find_tenant(token: str, keys: Mapping[str, str],
                compare: Callable[[bytes, bytes], bool] = hmac.compare_digest) -> str | None:
    """The tenant owning ``token``; every key is compared, in constant time, whatever matches.

    Digests are compared rather than the keys themselves: ``compare_digest`` may reveal when two
    inputs differ in length, and digests all have the same length.
    """
    offered = hashlib.sha256(token.encode()).digest()
    found = None
    for key, tenant in keys.items():
        if compare(hashlib.sha256(key.encode()).digest(), offered):
            found = tenant
    return found
