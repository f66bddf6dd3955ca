"""`tools` and `toolConfig`: what they may hold, and the tool-shaped parts and metadata of an answer.

Rules of the emulator (deterministic, documented in README):

* function declarations present, mode AUTO (the default), ANY or VALIDATED, and the last turn not a
  `functionResponse`: the answer is one `functionCall` part, for the first allowed declaration whose
  name the last user text mentions, else the first allowed one; `args` conform to its `parameters`
  (or `parametersJsonSchema`). Mode NONE, or a last turn answering a call: a text answer.
* googleSearch (or googleSearchRetrieval): `groundingMetadata` on the candidate and
  `toolUsePromptTokenCount` in usage; codeExecution: `executableCode` and `codeExecutionResult`
  parts before the text; urlContext: `urlContextMetadata` for each http(s) URL in the prompt.
* a prompt containing the word "cite" (cite, citation, ...) gets `citationMetadata`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emulator.protos import InvalidRequest, invalid_value
from emulator.schema import check_json_schema, check_response_schema

MODES = frozenset({"MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,127}$")
_URL = re.compile(r"https?://[^\s\"'<>)\]]+")
_CITE = re.compile(r"\bcit(e|es|ed|ing|ation|ations)\b", re.IGNORECASE)
#: Prompt tokens charged for the search results a grounded answer read.
SEARCH_TOOL_TOKENS = 64


@dataclass(frozen=True)
class ToolUse:
    """The tools of a request, as the answer needs them."""

    declarations: tuple[dict[str, Any], ...] = ()
    mode: str = "AUTO"
    allowed: tuple[str, ...] = ()
    google_search: bool = False
    code_execution: bool = False
    url_context: bool = False
    names: frozenset[str] = field(default_factory=frozenset)

    def function_to_call(self, last_text: str) -> dict[str, Any] | None:
        """The declaration the answer calls, or None for a text answer."""
        if not self.declarations or self.mode == "NONE":
            return None
        candidates = [d for d in self.declarations if not self.allowed or d.get("name") in self.allowed]
        for decl in candidates:
            if re.search(rf"\b{re.escape(str(decl.get('name')))}\b", last_text):
                return decl
        return candidates[0] if candidates else None


def parse_tools(tools: list[dict[str, Any]] | None, config: dict[str, Any] | None, version: str) -> ToolUse:
    """Check `tools` and `toolConfig` (normalized) and summarize them."""
    decls: list[dict[str, Any]] = []
    flags = {"googleSearch": False, "codeExecution": False, "urlContext": False}
    for t, tool in enumerate(tools or []):
        for d, decl in enumerate(tool.get("functionDeclarations") or []):
            _check_declaration(decl, f"GenerateContentRequest.tools[{t}].function_declarations[{d}]", version)
            decls.append(decl)
        for name in flags:
            flags[name] = flags[name] or tool.get(name) is not None
        flags["googleSearch"] = flags["googleSearch"] or tool.get("googleSearchRetrieval") is not None
    mode, allowed = _calling_config((config or {}).get("functionCallingConfig") or {}, version)
    names = frozenset(str(d.get("name")) for d in decls)
    unknown = [name for name in allowed if name not in names]
    if unknown:
        raise InvalidRequest(f"* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                             f"{unknown[0]} is not declared in tools.function_declarations")
    return ToolUse(tuple(decls), mode, allowed, flags["googleSearch"], flags["codeExecution"], flags["urlContext"],
                   names)


def _check_declaration(decl: dict[str, Any], where: str, version: str) -> None:
    if not isinstance(decl.get("name"), str) or not _NAME.match(decl["name"]):
        raise InvalidRequest(f"* {where}.name: Invalid function name. Must start with a letter or an underscore. "
                             "Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes "
                             "(-), with a maximum length of 128.")
    if decl.get("parameters") is not None and decl.get("parametersJsonSchema") is not None:
        raise InvalidRequest(f"* {where}: parameters and parameters_json_schema cannot both be set")
    if decl.get("parameters") is not None:
        check_response_schema(decl["parameters"], f"{where}.parameters", version)
    if decl.get("parametersJsonSchema") is not None:
        check_json_schema(decl["parametersJsonSchema"], f"{where}.parameters_json_schema")


def _calling_config(calling: dict[str, Any], version: str) -> tuple[str, tuple[str, ...]]:
    where = "tool_config.function_calling_config"
    mode = calling.get("mode") or "AUTO"
    if not isinstance(mode, str) or mode.upper() not in MODES:
        raise invalid_value(f"{where}.mode", "FunctionCallingConfig.Mode", mode, version)
    mode = "AUTO" if mode.upper() == "MODE_UNSPECIFIED" else mode.upper()
    allowed = calling.get("allowedFunctionNames") or []
    if not isinstance(allowed, list) or not all(isinstance(n, str) for n in allowed):
        raise invalid_value(f"{where}.allowed_function_names", "TYPE_STRING", allowed, version)
    if allowed and mode not in ("ANY", "VALIDATED"):
        raise InvalidRequest(f"* GenerateContentRequest.{where}.allowed_function_names: only allowed when mode is "
                             "ANY or VALIDATED")
    return mode, tuple(allowed)


def grounding_metadata(query: str) -> dict[str, Any]:
    """A candidate's `groundingMetadata` for a Google Search grounded answer."""
    words = query.split()[:8]
    text = " ".join(words) or "query"
    return {
        "webSearchQueries": [text],
        "searchEntryPoint": {"renderedContent": f'<div class="container">{text}</div>'},
        "groundingChunks": [{"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/emu1",
                                     "title": "example.com"}}],
        "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": 10, "text": ""}, "groundingChunkIndices": [0],
                               "confidenceScores": [0.9]}],
    }


def url_context_metadata(prompt: str) -> dict[str, Any]:
    """`urlContextMetadata`: every URL of the prompt, retrieved."""
    urls = list(dict.fromkeys(_URL.findall(prompt)))
    return {"urlMetadata": [{"retrievedUrl": url, "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS"}
                            for url in urls]}


def code_execution_parts(seed: int) -> list[dict[str, Any]]:
    """The code a code-execution answer ran, and its result."""
    value = seed % 1000
    return [
        {"executableCode": {"language": "PYTHON", "code": f"print({value} * 2)\n"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": f"{value * 2}\n"}},
    ]


def citation_metadata(prompt: str, text: str) -> dict[str, Any] | None:
    """`citationMetadata` when the prompt asks for citations."""
    if not _CITE.search(prompt):
        return None
    return {"citationSources": [{"startIndex": 0, "endIndex": min(len(text), 40),
                                 "uri": "https://example.com/emulated-source", "license": ""}]}
