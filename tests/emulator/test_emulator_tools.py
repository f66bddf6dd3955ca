"""Tools: deterministic function calls, function responses, Google Search, code execution, URL context, citations."""

from __future__ import annotations

import httpx
import jsonschema
import pytest
from google import genai
from google.genai import types

MODEL = "gemini-3.8-flash"
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters=types.Schema(type="OBJECT", properties={
        "city": types.Schema(type="STRING"), "days": types.Schema(type="INTEGER", minimum=1, maximum=7),
        "unit": types.Schema(type="STRING", enum=["C", "F"])}, required=["city"]))
TIME = types.FunctionDeclaration(name="get_time", description="Time in a zone", parameters_json_schema={
    "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]})
TOOLS = [types.Tool(function_declarations=[WEATHER, TIME])]


def _config(mode: str = "AUTO", allowed: list[str] | None = None) -> types.GenerateContentConfig:
    calling = types.FunctionCallingConfig(mode=mode, allowed_function_names=allowed)
    return types.GenerateContentConfig(tools=TOOLS, tool_config=types.ToolConfig(function_calling_config=calling),
                                       automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))


def test_declared_functions_get_a_function_call_with_conforming_args(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="what is the weather in Oslo?", config=_config())

    call = response.function_calls[0]
    assert call.name == "get_weather" and call.id
    jsonschema.validate(call.args, {"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"enum": ["C", "F"]}}, "required": ["city"]})
    assert response.candidates[0].content.parts[0].thought_signature


def test_the_prompt_picks_the_function_it_names_and_json_schema_params_are_followed(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="call get_time please", config=_config())

    assert response.function_calls[0].name == "get_time"
    assert isinstance(response.function_calls[0].args["zone"], str)


def test_allowed_function_names_restrict_mode_any(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="weather?", config=_config("ANY", ["get_time"]))

    assert [c.name for c in response.function_calls] == ["get_time"]


def test_mode_none_answers_text(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="weather?", config=_config("NONE"))

    assert response.function_calls is None and response.text


def test_a_function_response_turn_gets_a_text_answer_and_the_signature_round_trips(client: genai.Client) -> None:
    first = client.models.generate_content(model=MODEL, contents="weather in Oslo", config=_config())
    call_turn = first.candidates[0].content
    reply = types.Content(role="user", parts=[types.Part.from_function_response(
        name="get_weather", response={"temperature": 3})])

    second = client.models.generate_content(model=MODEL, config=_config(), contents=[
        types.Content(role="user", parts=[types.Part(text="weather in Oslo")]), call_turn, reply])

    assert second.function_calls is None and second.text


def test_an_unsigned_gemini_3_function_call_is_refused(emulator) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "weather"}]},
                         {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
                         {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {}}}]}]}

    response = emulator.admin.post(f"/v1beta/models/{MODEL}:generateContent", json=body,
                                   headers={"x-goog-api-key": "k"})

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "Function call is missing a thought_signature in functionCall parts.")


def test_automatic_function_calling_runs_the_python_function(client: genai.Client) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> str:
        """Weather for a city."""
        seen.append(city)
        return "sunny"

    config = types.GenerateContentConfig(tools=[get_weather])
    response = client.models.generate_content(model=MODEL, contents="weather in Oslo?", config=config)

    assert len(seen) == 1 and response.text
    assert len(response.automatic_function_calling_history) == 3


def test_google_search_grounds_the_answer(client: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])

    response = client.models.generate_content(model=MODEL, contents="who won the match", config=config)

    grounding = response.candidates[0].grounding_metadata
    assert grounding.web_search_queries == ["who won the match"]
    assert grounding.grounding_chunks[0].web.uri and grounding.search_entry_point.rendered_content
    usage = response.usage_metadata
    assert usage.tool_use_prompt_token_count and usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.tool_use_prompt_token_count)


def test_code_execution_returns_code_and_result_parts(client: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(code_execution=types.ToolCodeExecution())])

    response = client.models.generate_content(model=MODEL, contents="compute something", config=config)

    assert response.executable_code.startswith("print(")
    assert response.code_execution_result.strip().isdigit()
    assert response.text


def test_url_context_reports_each_url_of_the_prompt(client: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(url_context=types.UrlContext())])

    response = client.models.generate_content(model=MODEL, config=config,
                                              contents="compare https://a.example/x and https://b.example/y")

    metadata = response.candidates[0].url_context_metadata.url_metadata
    assert [m.retrieved_url for m in metadata] == ["https://a.example/x", "https://b.example/y"]
    assert all(m.url_retrieval_status.value == "URL_RETRIEVAL_STATUS_SUCCESS" for m in metadata)


def test_citations_come_when_the_prompt_asks(client: genai.Client) -> None:
    cited = client.models.generate_content(model=MODEL, contents="cite your sources")
    plain = client.models.generate_content(model=MODEL, contents="no sources")

    assert cited.candidates[0].citation_metadata.citations[0].uri
    assert plain.candidates[0].citation_metadata is None


def _post(emulator, body: dict) -> httpx.Response:
    body = {"contents": [{"parts": [{"text": "x"}]}], **body}
    return emulator.admin.post(f"/v1beta/models/{MODEL}:generateContent", json=body, headers={"x-goog-api-key": "k"})


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"tools": [{"functionDeclarations": [{"name": "9bad"}]}]}, "function_declarations[0].name: Invalid function"),
        ({"tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {}}}]}]},
         "function_declarations[0].parameters.properties: should be non-empty for OBJECT type"),
        ({"tools": [{"functionDeclarations": [{"name": "f", "behaviour": "x"}]}]},
         "Unknown name \"behaviour\" at 'tools[0].function_declarations[0]'"),
        ({"tools": [{"webSearch": {}}]}, "Unknown name \"webSearch\" at 'tools[0]'"),
        ({"toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}}, "function_calling_config.mode"),
        ({"tools": [{"functionDeclarations": [{"name": "f"}]}],
          "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}}},
         "g is not declared"),
    ],
)
def test_malformed_tools_are_400(emulator, body: dict, needle: str) -> None:
    response = _post(emulator, body)

    assert response.status_code == 400 and needle in response.json()["error"]["message"]


def test_a_streamed_function_call_arrives_whole_in_one_frame(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="weather in Oslo", config=_config()))

    calls = [c.function_calls for c in chunks if c.function_calls]
    assert len(calls) == 1 and calls[0][0].name == "get_weather"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
