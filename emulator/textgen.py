"""Deterministic text generation and token counting.

Token counting rule (used for `usageMetadata`, `:countTokens` and the TPM quota):

* prompt tokens = the number of whitespace-separated words in every text part (contents and
  system instruction) + 3 per content turn (the system instruction counts as one turn);
* output tokens = the number of whitespace-separated words of the generated text.

It is deliberately not `len(chars) / 4`: generated words average about six characters with their
space, so a chars/4 estimate over-counts and settlement against the real count matters.

Generated text is a pure function of (model, prompt text): words drawn from a fixed vocabulary by
a PRNG seeded with a SHA-256 of both, grouped into capitalised sentences ending in a period. Its
length is 20-60 words per prompt unless the `output_tokens` knob forces one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Fixed vocabulary of the generated text (plain words, no whitespace).
VOCABULARY: tuple[str, ...] = tuple(
    """
    able about above across after again against along already also always among another answer
    around away back because become before began begin behind being below best better between
    both bring build built call came carry cause change city clear close cold come common could
    country course cover cross dark day deep different does done door down draw during each early
    earth east easy enough even ever every example face fact fall family far fast father feel field
    find fire first follow food force form found four free friend front full game give good great
    green ground group grow half hand hard head hear heard heat help high hold home horse hour house
    idea important inside island keep kind know land large last late learn leave letter light line
    list little live long look machine made main make many mark matter mean measure might mile mind
    minute money moon morning mountain move much music must name near need never next night north
    note nothing notice number object ocean often open order other over page paper part pass people
    perhaps picture piece place plain plan plant point power press problem product pull question
    quick rain reach read ready real record remember rest river road rock room round rule run same
    school science second seem self sentence serve several shape short should show side simple since
    size slow small snow some song soon sound south space special spell stand star start state stay
    step still stone stood story street strong study such sure surface system table take talk teach
    test than thing think third those though thought three through time today together told took
    town travel tree true turn under until upon usual valley very voice wait walk warm watch water
    wave weather week weight well west where while white whole wind window winter wonder wood word
    work world would write year young
    """.split()
)
#: Output length range (words) when the `output_tokens` knob is 0.
MIN_OUTPUT_WORDS = 20
MAX_OUTPUT_WORDS = 60
#: Extra prompt tokens charged per content turn.
TOKENS_PER_TURN = 3

_TAG = re.compile(r"\[\[tag:([^\]]+)\]\]")
_WORD_WITH_SPACE = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class Generation:
    """The planned answer: its text, output token count and finish reason."""

    text: str
    tokens: int
    finish_reason: str


def count_words(text: str) -> int:
    """Whitespace-separated words in `text`."""
    return len(text.split())


def count_prompt_tokens(texts: Sequence[str], turns: int) -> int:
    """Prompt tokens by the documented rule: words in every text part + 3 per turn."""
    return sum(count_words(text) for text in texts) + TOKENS_PER_TURN * turns


def bare_model(model: str) -> str:
    """`models/gemini-2.5-flash` -> `gemini-2.5-flash`."""
    return model.removeprefix("models/")


def _seed(model: str, prompt: str) -> int:
    digest = hashlib.sha256(f"{bare_model(model)}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def natural_length(model: str, prompt: str) -> int:
    """The per-prompt output length (words) used when no length is forced."""
    span = MAX_OUTPUT_WORDS - MIN_OUTPUT_WORDS + 1
    return MIN_OUTPUT_WORDS + _seed(model, prompt) % span


def generate_text(model: str, prompt: str, words: int) -> str:
    """`words` deterministic words for (model, prompt), as capitalised sentences."""
    rng = random.Random(_seed(model, prompt))
    out: list[str] = []
    while len(out) < words:
        sentence = [rng.choice(VOCABULARY) for _ in range(min(rng.randint(6, 14), words - len(out)))]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        out.extend(sentence)
    return " ".join(out)


def plan_generation(
    model: str,
    prompt: str,
    *,
    forced_tokens: int = 0,
    max_output_tokens: int | None = None,
    stop_sequences: Sequence[str] = (),
    json_output: bool = False,
) -> Generation:
    """Generate, cut before the first stop sequence (STOP), then cap at max tokens (MAX_TOKENS).

    ``json_output`` (``responseMimeType: application/json``) wraps the words in a JSON object,
    ``{"text": "..."}``, before the cuts: as with the real API, an answer cut at its token limit is
    no longer valid JSON.
    """
    text = generate_text(model, prompt, forced_tokens or natural_length(model, prompt))
    if json_output:
        text = json.dumps({"text": text})
    return cut(text, max_output_tokens=max_output_tokens, stop_sequences=stop_sequences)


def cut(text: str, *, max_output_tokens: int | None = None, stop_sequences: Sequence[str] = ()) -> Generation:
    """`text` cut before the first stop sequence (STOP), then capped at `max_output_tokens` words (MAX_TOKENS)."""
    cuts = [text.find(stop) for stop in stop_sequences if stop and stop in text]
    if cuts:
        text = text[: min(cuts)]
    if max_output_tokens is not None and count_words(text) > max_output_tokens:
        text = "".join(_WORD_WITH_SPACE.findall(text)[:max_output_tokens])
        return Generation(text, max_output_tokens, "MAX_TOKENS")
    return Generation(text, count_words(text), "STOP")


def split_chunks(text: str, chunk_tokens: int) -> list[str]:
    """Split into pieces of `chunk_tokens` words whose concatenation is exactly `text`."""
    pieces = _WORD_WITH_SPACE.findall(text)
    if not pieces:
        return [text]
    pieces[-1] += text[len("".join(pieces)) :]
    return ["".join(pieces[i : i + chunk_tokens]) for i in range(0, len(pieces), chunk_tokens)]


def find_tag(text: str) -> str | None:
    """The first `[[tag:xyz]]` marker of the prompt, so tests can find their own calls."""
    match = _TAG.search(text)
    return match.group(1) if match else None


def key_fingerprint(key: str) -> str:
    """A short SHA-256 prefix identifying an API key without revealing it."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]
