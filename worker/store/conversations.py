"""Conversations: a tenant's named history of exchanges, and the line its jobs wait in.

A job with a ``conversation_id`` is given a ticket when it is stored (``JobStore.save_new``,
``lua/conv_ticket.lua``).  A runner starts it only when the conversation's ``turn`` equals its
ticket (:meth:`Conversations.prepare`); then the model sees the whole history followed by the
job's own turns.  When the job ends in any way, :meth:`Conversations.settle` ends its turn
(``lua/conv_settle.lua``): a success appends the exchange (the job's turns and the answer) to the
history, and the next ticket is served.  Ending a turn is a compare-and-set on the ticket, so it is
safe to call from every place that sees the job end: the runner, the web's cancel, a redelivered
message, or a later job that finds the holder of the turn finished or gone (which is how a worker
crash or a lost record never blocks a conversation for good).

History is appended only on success, as a whole exchange, so a failed or cancelled job leaves it
unchanged and user and model turns always come in the order they happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from worker.core import keys
from worker.core.job import NON_TERMINAL, JobStatus
from worker.core.settings import Settings
from worker.store.jobs import JobStore
from worker.store.scripts import load_script

#: Seconds a job waits before it looks again whether its conversation's turn has come.
TURN_POLL_S = 0.5
#: Turns skipped at most in one look (holders that are gone); bounds the work of one call.
MAX_SKIPS = 100


@dataclass(frozen=True)
class Exchange:
    """One job's part of a conversation: its turns and the model's answer."""

    job_id: str
    turns: list[dict[str, Any]]


class Conversations:
    """Orders a conversation's jobs and keeps its history."""

    def __init__(self, client: redis.Redis, store: JobStore, settings: Settings) -> None:
        self.redis = client
        self.store = store
        self.settings = settings
        self._settle = load_script(client, "conv_settle")

    def prepare(self, record: dict[str, str], request: dict[str, Any]) -> dict[str, Any] | None:
        """The request with the history before the job's turns, or ``None`` while another job's turn lasts."""
        conversation = record.get("conversation_id")
        if not conversation:
            return request
        if not self._my_turn(record):
            return None
        history = [turn for exchange in self.history(record["tenant"], conversation) for turn in exchange.turns]
        return {**request, "contents": history + request["contents"]}

    def settle(self, record: dict[str, str]) -> bool:
        """End a finished (or vanished) job's turn; a succeeded job's exchange joins the history."""
        conversation, ticket = record.get("conversation_id"), record.get("conv_ticket")
        if not conversation or not ticket:
            return False
        exchange = ""
        if record.get("status") == JobStatus.succeeded.value and record.get("result"):
            answer = {"role": "model", "parts": [{"text": json.loads(record["result"])["text"]}]}
            turns = json.loads(record["request"])["contents"] + [answer]
            exchange = json.dumps({"job_id": record["id"], "turns": turns})
        return self._end_turn(record["tenant"], conversation, int(ticket), exchange)

    def history(self, tenant: str, conversation: str) -> list[Exchange]:
        """The conversation's exchanges, oldest first."""
        items = self.redis.lrange(keys.conversation(tenant, conversation), 0, -1)
        return [Exchange(**json.loads(item)) for item in items]

    def exists(self, tenant: str, conversation: str) -> bool:
        """True when the conversation has history or jobs in line."""
        found = self.redis.exists(keys.conversation(tenant, conversation),
                                  keys.conversation_part(tenant, conversation, "next"))
        return bool(found)

    def clear(self, tenant: str, conversation: str) -> None:
        """Forget the history; jobs already in line keep their order and add to a fresh history."""
        self.redis.delete(keys.conversation(tenant, conversation))

    def _my_turn(self, record: dict[str, str]) -> bool:
        """True when the job may run now; ends the turns of holders that finished or vanished on the way."""
        tenant, conversation = record["tenant"], record["conversation_id"]
        ticket = int(record.get("conv_ticket") or 0)
        turn_key = keys.conversation_part(tenant, conversation, "turn")
        for _ in range(MAX_SKIPS):
            turn_raw = self.redis.get(turn_key)
            if not ticket or turn_raw is None or int(turn_raw) >= ticket:
                # Served, or the line's state is lost (expired): run rather than wait for ever.
                return True
            turn = int(turn_raw)
            holder_id = self.redis.hget(keys.conversation_part(tenant, conversation, "holders"), str(turn))
            holder = self.store.get(holder_id) if holder_id else None
            if holder is not None and holder["status"] in NON_TERMINAL:
                return False
            # The holder finished but nobody ended its turn (its worker died), or its job is gone.
            if holder is None or not self.settle(holder):
                self._end_turn(tenant, conversation, turn, "")
        return False

    def _end_turn(self, tenant: str, conversation: str, ticket: int, exchange: str) -> bool:
        args = [ticket, exchange, self.settings.conversation_max_turns, self.settings.conversation_ttl]
        return bool(self._settle(keys=keys.conversation_line(tenant, conversation), args=args))
