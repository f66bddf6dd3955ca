"""Each tenant's webhook signing secret, derived from ``GEMQ_WEBHOOK_SECRET`` (no I/O).

The web shows it (``GET /v1/webhooks/secret``) and the deliverer signs with it.
"""

from __future__ import annotations

import base64

from worker.core.settings import Settings

#: Standard Webhooks secrets are ``whsec_`` + base64 of the key bytes.
SECRET_PREFIX = "whsec_"


def tenant_secret(settings: Settings, tenant: str) -> str:
    """The tenant's signing secret, ``whsec_<base64>``, derived from ``GEMQ_WEBHOOK_SECRET``."""
    return SECRET_PREFIX + base64.b64encode(settings.tenant_secret_seed(tenant)).decode("ascii")
