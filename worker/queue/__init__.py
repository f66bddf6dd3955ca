"""The broker adapter: Celery and kombu behind the Publisher protocol (``worker.core.publisher``).

The only package (with the composition roots of ``worker.process``) that imports Celery or kombu.
"""
