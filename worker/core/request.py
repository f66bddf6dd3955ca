"""What a client submits: the job request, its parts and the bounds of every input.

These pydantic models are the HTTP contract of ``POST /v1/jobs`` (and of each batch line): the web
validates with them and ``/openapi.json`` is generated from them.  Input bounds are named constants.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from worker.core.job import Priority

#: Longest prompt (characters, all text parts together).
MAX_PROMPT_CHARS = 1_000_000
#: Most turns in ``contents``.
MAX_CONTENTS = 1_000
#: Most parts in one turn.
MAX_PARTS = 100
#: Most metadata entries, and the longest key and value.
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
#: Model names: letters, digits, dot, dash, underscore (they become part of Redis keys).
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Most stop sequences, and their length.
MAX_STOP_SEQUENCES = 5
MAX_STOP_SEQUENCE_CHARS = 100
#: Most fallback models and safety settings.
MAX_FALLBACK_MODELS = 3
MAX_SAFETY_SETTINGS = 10
#: Longest webhook URL.
MAX_URL_CHARS = 2048

# Bounds written as types, so /openapi.json states them and the validation errors name the item.
ModelName = Annotated[str, StringConstraints(pattern=MODEL_PATTERN)]
StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STOP_SEQUENCE_CHARS)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_METADATA_KEY_CHARS)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_CHARS)]
#: Conversation ids (tenant-scoped; they become part of Redis keys).
CONVERSATION_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class StrictModel(BaseModel):
    """A request model: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Part(StrictModel):
    """One text part of a turn."""

    text: str = Field(max_length=MAX_PROMPT_CHARS)


class Content(StrictModel):
    """One turn of a conversation, as Gemini takes it."""

    role: Literal["user", "model"] = "user"
    parts: list[Part] = Field(min_length=1, max_length=MAX_PARTS)


class GenerationConfig(StrictModel):
    """Sampling and output controls passed to Gemini."""

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1, le=1000)
    max_output_tokens: int | None = Field(default=None, ge=1, le=65_536)
    stop_sequences: list[StopSequence] | None = Field(default=None, max_length=MAX_STOP_SEQUENCES)
    response_mime_type: Literal["text/plain", "application/json", "text/x.enum"] | None = None


HarmCategory = Literal[
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
]
HarmThreshold = Literal["BLOCK_NONE", "BLOCK_ONLY_HIGH", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_LOW_AND_ABOVE", "OFF"]


class SafetySetting(StrictModel):
    """One safety filter threshold."""

    category: HarmCategory
    threshold: HarmThreshold


class JobRequest(StrictModel):
    """What a client submits: exactly one of ``prompt`` and ``contents``."""

    # The "exactly one" rule in /openapi.json too (a null value does not count as given).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
        {"required": ["contents"], "properties": {"contents": {"type": "array"}}},
    ]})

    prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS)
    contents: list[Content] | None = Field(default=None, min_length=1, max_length=MAX_CONTENTS)
    model: ModelName | None = None
    system_instruction: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    generation_config: GenerationConfig | None = None
    safety_settings: list[SafetySetting] | None = Field(default=None, max_length=MAX_SAFETY_SETTINGS)
    priority: Priority = Priority.normal
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_CHARS)
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=MAX_METADATA_KEYS)
    #: Models tried in order when the model stays rate limited or unavailable past the retry budget.
    fallback_models: list[ModelName] = Field(default_factory=list, max_length=MAX_FALLBACK_MODELS)
    #: Continue this conversation: the model sees its history, and the exchange is added when the job succeeds.
    conversation_id: str | None = Field(default=None, pattern=CONVERSATION_PATTERN)
    #: Answer from the response cache when an identical request succeeded before (not with a conversation).
    cache: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> JobRequest:
        if (self.prompt is None) == (self.contents is None):
            raise ValueError("give exactly one of 'prompt' and 'contents'")
        if self.cache and self.conversation_id:
            # The history changes with every exchange, so the same request means something new each time.
            raise ValueError("'cache' cannot be used with 'conversation_id'")
        if self.text_chars() > MAX_PROMPT_CHARS:
            raise ValueError(f"the request's text is longer than {MAX_PROMPT_CHARS} characters")
        return self

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http or https URL")
        return value

    def text_chars(self) -> int:
        """Characters of text in the prompt, contents and system instruction."""
        chars = len(self.prompt or "") + len(self.system_instruction or "")
        return chars + sum(len(p.text) for c in self.contents or () for p in c.parts)

    def turns(self) -> list[dict[str, Any]]:
        """The conversation as Gemini's ``contents``."""
        if self.contents is not None:
            return [c.model_dump() for c in self.contents]
        return [{"role": "user", "parts": [{"text": self.prompt}]}]

    def call_spec(self) -> dict[str, Any]:
        """What the worker needs to call Gemini (stored with the job as ``request``)."""
        spec: dict[str, Any] = {"contents": self.turns()}
        if self.system_instruction:
            spec["system_instruction"] = self.system_instruction
        if self.generation_config:
            spec["generation_config"] = self.generation_config.model_dump(exclude_none=True)
        if self.safety_settings:
            spec["safety_settings"] = [s.model_dump() for s in self.safety_settings]
        if self.fallback_models:
            spec["fallback_models"] = self.fallback_models
        return spec

