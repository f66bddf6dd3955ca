"""A job's execution: the runner (admission, the streamed call, retries, the final state), the Gemini
client (the only importer of google-genai's client), streaming into the record, and what follows a
run (re-queue, webhook, batch).  No Celery: the broker is reached through a Publisher.
"""
