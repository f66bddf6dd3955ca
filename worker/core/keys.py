"""Every Redis key gemq uses, built here and nowhere else.

Schema (all under the ``gemq:`` prefix; ``{x}`` is a value):

==========================================  ========  =====================================================
key                                         type      what / lifetime
==========================================  ========  =====================================================
``gemq:job:{id}``                           hash      one job record; EXPIRE result TTL once terminal
``gemq:job:{id}:events``                    stream    status and text-delta events (SSE); MAXLEN-capped,
                                                      EXPIRE with the job
``gemq:active``                             zset      job id -> last activity ms (creation, each status change,
                                                      a re-queue's due time) of every job not yet finished;
                                                      terminal jobs leave it (``transition.lua``), the reaper
                                                      drops ids whose record is gone (``worker.process.reaper``)
``gemq:reaper:lock``                        string    the worker running this reaper pass; PX the interval
``gemq:tenant:{t}:jobs``                    zset      job id -> created ms, for listing; entries older than
                                                      the result TTL are trimmed on insert
``gemq:batch:{id}``                         hash      batch record, its counters by status (``n_<status>``,
                                                      ``n_done``, ``n_total``) and token sums; EXPIRE result
                                                      TTL once its last item finished (``transition.lua``)
``gemq:batch:{id}:items``                   list      ``"{job id} {key}"`` per item, in submission order;
                                                      EXPIRE with the batch (items' records are not in the
                                                      tenant's job index)
``gemq:tenant:{t}:batches``                 zset      batch id -> created ms; trimmed like jobs
``gemq:idem:{t}:{sha}``                     string    Idempotency-Key (hashed) -> JSON ``{fp, id}``: request
                                                      fingerprint and the resource made; 30 s while pending,
                                                      then 24 h
``gemq:lim:{model}:log``                    zset      calls in the sliding window, member ``callid:tokens``,
                                                      score = ms; trimmed on every admission
``gemq:lim:{model}:leases``                 zset      concurrency leases, score = lease expiry ms
``gemq:lim:{model}:state``                  hash      tokens in the window, pause_until, closed_until
                                                      (day quota), day, day_count; one per model
``gemq:lim:{model}:waiting``                zset      jobs waiting for capacity, score = rank (priority, time)
``gemq:lim:{model}:waitexp``                zset      same members, score = when the waiting entry lapses
``gemq:lim:models``                         set       models the limiter has seen (``GET /v1/limits``)
``gemq:conv:{t}:{id}``                      list      conversation history, one JSON exchange (a job's turns
                                                      and the answer) per item; EXPIRE refreshed on use
``gemq:conv:{t}:{id}:next`` / ``:turn``     string    ticket dispenser / ticket now served (ordering)
``gemq:conv:{t}:{id}:holders``              hash      ticket -> job id, for tickets not yet served
``gemq:cache:{t}:{sha}``                    string    cached successful result; EXPIRE cache TTL
``gemq:webhook:{event id}``                 hash      one webhook event: tenant, url, type, signed body,
                                                      state, attempts (JSON), next attempt index, lease;
                                                      EXPIRE at creation: the result TTL, or longer than
                                                      the retry schedule if that is longer
``gemq:webhooks:due``                       zset      ``{event id}:{attempt}`` -> when to publish that
                                                      attempt (ms); members leave once published
``gemq:cancels``                            pub/sub   ids of cancelled jobs, so running calls stop at once
``gemq:workers``                            zset      worker name -> last heartbeat ms (``/readyz``)
``gemq:metrics:counters`` / ``:hist``       hash      Prometheus counters / histogram buckets summed over every
                                                      process (``worker.store.metrics``); fields are JSON, bounded
                                                      label sets, no TTL
``gemq:rl:{LIMITER/{t}/...}``               (limits)  per-tenant submission limits (sliding window counters
                                                      and their ``/-1`` previous windows), owned by ``limits``
``gemq:broker:...``                         (kombu)   Celery queues, unacked messages, events (kombu's
                                                      ``global_keyprefix``)
==========================================  ========  =====================================================
"""

from __future__ import annotations

PREFIX = "gemq:"
#: kombu's ``global_keyprefix``: every broker key (queues, unacked set, event fan-out) starts with it.
BROKER_PREFIX = PREFIX + "broker:"
#: Celery queues, one per priority.  The worker reads them in sorted-name order (kombu's ``sorted``
#: strategy), so these names fix the order: high, then normal, then low.
JOB_QUEUES = {"high": "jobs-0-high", "normal": "jobs-1-normal", "low": "jobs-2-low"}
#: Webhook deliveries have their own queue and their own worker, so slow receivers never delay generation.
WEBHOOK_QUEUE = "webhooks"
#: Prefix handed to the ``limits`` library for per-tenant submission limits.
SUBMIT_LIMIT_PREFIX = PREFIX + "rl"


def job(job_id: str) -> str:
    """The job record hash."""
    return f"{PREFIX}job:{job_id}"


def job_events(job_id: str) -> str:
    """The job's event stream (SSE)."""
    return f"{PREFIX}job:{job_id}:events"


def active() -> str:
    """Unfinished jobs by last activity: what the reaper watches for jobs nothing will move."""
    return f"{PREFIX}active"


def reaper_lock() -> str:
    """Held by the one worker whose reaper makes the current pass."""
    return f"{PREFIX}reaper:lock"


def tenant_jobs(tenant: str) -> str:
    """The tenant's job index (zset by creation time)."""
    return f"{PREFIX}tenant:{tenant}:jobs"


def batch(batch_id: str) -> str:
    """The batch record hash."""
    return f"{PREFIX}batch:{batch_id}"


def batch_items(batch_id: str) -> str:
    """The batch's items (``"{job id} {key}"``) in submission order."""
    return f"{PREFIX}batch:{batch_id}:items"


def tenant_batches(tenant: str) -> str:
    """The tenant's batch index (zset by creation time)."""
    return f"{PREFIX}tenant:{tenant}:batches"


def idempotency(tenant: str, key_hash: str) -> str:
    """An Idempotency-Key record, tenant-scoped (the key itself is hashed)."""
    return f"{PREFIX}idem:{tenant}:{key_hash}"


def webhook(event_id: str) -> str:
    """A webhook event and its delivery state."""
    return f"{PREFIX}webhook:{event_id}"


def webhooks_due() -> str:
    """Webhook attempts waiting for their time (zset by due ms)."""
    return f"{PREFIX}webhooks:due"


def limiter(model: str, part: str) -> str:
    """One part of a model's limiter state (``log``, ``leases``, ``state``, ``waiting``, ``waitexp``)."""
    return f"{PREFIX}lim:{model}:{part}"


def limiter_models() -> str:
    """The set of models the limiter has seen."""
    return f"{PREFIX}lim:models"


def conversation(tenant: str, conversation_id: str) -> str:
    """A conversation's turns."""
    return f"{PREFIX}conv:{tenant}:{conversation_id}"


def conversation_part(tenant: str, conversation_id: str, part: str) -> str:
    """A conversation's ordering state (``next``, ``turn``, ``holders``)."""
    return f"{PREFIX}conv:{tenant}:{conversation_id}:{part}"


def conversation_line(tenant: str, conversation_id: str) -> list[str]:
    """All of a conversation's keys, in the order its Lua scripts take them: history, next, turn, holders."""
    parts = [conversation_part(tenant, conversation_id, part) for part in ("next", "turn", "holders")]
    return [conversation(tenant, conversation_id), *parts]


def cache(tenant: str, request_hash: str) -> str:
    """A cached result for one tenant and request."""
    return f"{PREFIX}cache:{tenant}:{request_hash}"


def cancels_channel() -> str:
    """Pub/sub channel announcing cancelled job ids to every worker process."""
    return f"{PREFIX}cancels"


def workers() -> str:
    """Worker heartbeats (name -> ms)."""
    return f"{PREFIX}workers"


def metrics(part: str) -> str:
    """Shared metric state (``counters``, ``hist``)."""
    return f"{PREFIX}metrics:{part}"


def broker_queue(queue: str) -> str:
    """The list kombu keeps a queue's waiting messages in (priority step 0, the only one gemq uses)."""
    return f"{BROKER_PREFIX}{queue}"


def broker_unacked() -> str:
    """kombu's hash of delivered, unacknowledged messages (running jobs and parked countdowns)."""
    return f"{BROKER_PREFIX}unacked"
