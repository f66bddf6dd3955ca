"""Other request fields: seed, penalties, logprobs, candidates, modalities, speech, safety, labels, caches."""

from __future__ import annotations

import httpx
import pytest
from google import genai
from google.genai import errors, types

MODEL = "gemini-3.5-flash"


def test_the_same_seed_gives_the_same_answer_and_another_seed_another(client: genai.Client) -> None:
    def ask(seed: int) -> str:
        return client.models.generate_content(model=MODEL, contents="seeded",
                                              config=types.GenerateContentConfig(seed=seed)).text

    assert ask(7) == ask(7)
    assert ask(7) != ask(8)


def test_logprobs_come_per_token_with_the_top_candidates_asked_for(client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_logprobs=True, logprobs=3)

    response = client.models.generate_content(model=MODEL, contents="probabilities", config=config)

    cand = response.candidates[0]
    chosen = cand.logprobs_result.chosen_candidates
    assert [c.token for c in chosen] == response.text.split()
    assert all(len(top.candidates) == 3 for top in cand.logprobs_result.top_candidates)
    assert cand.avg_logprobs == pytest.approx(sum(c.log_probability for c in chosen) / len(chosen), abs=1e-5)


def test_candidate_count_gives_distinct_candidates(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="several",
                                              config=types.GenerateContentConfig(candidate_count=3))

    texts = [c.content.parts[0].text for c in response.candidates]
    assert [c.index for c in response.candidates] == [0, 1, 2] and len(set(texts)) == 3


def test_penalties_speech_modalities_labels_and_safety_are_accepted(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        presence_penalty=0.5, frequency_penalty=-0.5, response_modalities=["TEXT"], speech_config="Kore",
        labels={"team": "search"}, media_resolution="MEDIA_RESOLUTION_MEDIUM",
        safety_settings=[types.SafetySetting(category="HARM_CATEGORY_DANGEROUS_CONTENT", threshold="BLOCK_NONE")])

    assert client.models.generate_content(model=MODEL, contents="all the knobs", config=config).text


def _post(emulator, body: dict) -> httpx.Response:
    body = {"contents": [{"parts": [{"text": "x"}]}], **body}
    return emulator.admin.post(f"/v1beta/models/{MODEL}:generateContent", json=body, headers={"x-goog-api-key": "k"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"safetySettings": [{"category": "HARM_CATEGORY_GORE", "threshold": "BLOCK_NONE"}]},
         "Invalid value at 'safety_settings[0].category' "
         '(type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory), "HARM_CATEGORY_GORE"'),
        ({"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_SOME"}]},
         "Invalid value at 'safety_settings[0].threshold' (type.googleapis.com/google.ai.generativelanguage.v1beta."
         'SafetySetting.HarmBlockThreshold), "BLOCK_SOME"'),
        ({"generationConfig": {"responseModalities": ["IMAGE"]}},
         "Model does not support the requested response modalities: image"),
        ({"serviceTier": "economy"},
         "Invalid value at 'service_tier' (type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier), "
         '"economy"'),
        ({"systemInstruction": "be brief"},
         "Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), "
         '"be brief"'),
    ],
)
def test_bad_enum_and_message_values_are_400_as_the_parser_answers(emulator, body: dict, message: str) -> None:
    response = _post(emulator, body)

    assert response.status_code == 400 and response.json()["error"]["message"] == message


def test_unknown_fields_at_any_depth_keep_failing(emulator) -> None:
    response = _post(emulator, {"generationConfig": {"thinkingConfig": {"thinkingBudgets": 3}}})

    assert response.json()["error"]["message"] == ('Invalid JSON payload received. Unknown name "thinkingBudgets" at '
                                                  "'generation_config.thinking_config': Cannot find field.")


def test_a_context_cache_is_created_used_counted_and_deleted(client: genai.Client) -> None:
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(
        contents=["a long shared document of words"], ttl="600s", display_name="doc"))

    response = client.models.generate_content(model=MODEL, contents="question about it",
                                              config=types.GenerateContentConfig(cached_content=cache.name))
    fetched = client.caches.get(name=cache.name)
    client.caches.delete(name=cache.name)

    # "a long shared document of words": 6 words + 3 for its turn.
    assert cache.name.startswith("cachedContents/") and cache.usage_metadata.total_token_count == 9
    assert fetched.display_name == "doc" and fetched.model == f"models/{MODEL}"
    usage = response.usage_metadata
    assert usage.cached_content_token_count == 9 and usage.prompt_token_count == 9 + 3 + 3
    with pytest.raises(errors.ClientError) as caught:
        client.caches.get(name=cache.name)
    assert caught.value.code == 403


def test_an_unknown_cache_is_403_as_the_api_answers(client: genai.Client) -> None:
    config = types.GenerateContentConfig(cached_content="cachedContents/nope")

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="x", config=config)

    assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")
    assert caught.value.message == "CachedContent not found (or permission denied)"


def test_a_cache_cannot_be_combined_with_a_system_instruction(client: genai.Client) -> None:
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(contents=["doc"]))
    config = types.GenerateContentConfig(cached_content=cache.name, system_instruction="be brief")

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="x", config=config)

    assert caught.value.message.startswith("CachedContent can not be used with GenerateContent request setting")
