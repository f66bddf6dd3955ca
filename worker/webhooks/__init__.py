"""Webhook delivery: one signed HTTP attempt at a time (``delivery``), the mover that publishes due
attempts (``mover``), the SSRF guard (``ssrf``) and the tenants' signing secrets (``secrets``).

The events' state lives in Redis (``worker.store.webhooks``).  The web imports ``ssrf`` and ``secrets``
only; ``delivery`` and ``mover`` run in the webhooks worker.
"""
