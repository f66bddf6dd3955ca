"""gemq worker: the job model, store, limiter, Gemini client and Celery tasks."""
