"""The Redis layer: job and batch records, conversations, the cache, webhook event state, the limiter,
metrics and cancels; each with its Lua scripts in ``lua/``.  Redis only: never Celery or kombu (the
stores publish through the Publisher they are given).
"""
