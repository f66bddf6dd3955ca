"""The model catalogue: models.list shape and paging, shut-down and deprecated models, both API versions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google import genai
from google.genai import errors

from emulator.catalog import CURRENT, SHUTDOWN

KEY = {"x-goog-api-key": "k"}
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_models_list_has_the_current_family_in_the_real_shape(emulator) -> None:
    models = emulator.admin.get("/v1beta/models", headers=KEY).json()["models"]
    by_name = {m["name"]: m for m in models}

    assert {f"models/{spec.name}" for spec in CURRENT} == set(by_name)
    flash = by_name["models/gemini-3.8-flash"]
    assert flash["baseModelId"] == "gemini-3.8-flash" and flash["displayName"] == "Gemini 3.8 Flash"
    assert {"version", "description", "temperature", "maxTemperature", "topP", "topK"} <= flash.keys()
    assert flash["inputTokenLimit"] == 1_048_576 and flash["outputTokenLimit"] == 65_536
    assert flash["thinking"] is True
    assert {"generateContent", "countTokens", "batchGenerateContent"} <= set(flash["supportedGenerationMethods"])
    assert "models/gemini-2.5-flash-lite" in by_name


def test_the_sdk_lists_and_gets_models_on_both_api_versions(make_client: Callable[..., genai.Client]) -> None:
    for version in ("v1", "v1beta"):
        client = make_client(api_version=version)
        names = [model.name for model in client.models.list()]
        model = client.models.get(model="models/gemini-3.5-flash-lite")

        assert "models/gemini-3.8-flash" in names
        assert model.display_name == "Gemini 3.5 Flash-Lite" and "batchGenerateContent" in model.supported_actions


def test_paging_follows_page_size_and_opaque_tokens(emulator) -> None:
    first = emulator.admin.get("/v1/models", params={"pageSize": 4}, headers=KEY).json()
    second = emulator.admin.get("/v1/models", params={"pageSize": 4, "pageToken": first["nextPageToken"]},
                                headers=KEY).json()
    everything = emulator.admin.get("/v1/models", params={"pageSize": 5000}, headers=KEY).json()

    assert len(first["models"]) == 4 and not first["nextPageToken"].isdigit()
    assert [m["name"] for m in first["models"] + second["models"]] == [m["name"] for m in everything["models"][:8]]
    assert "nextPageToken" not in everything


def test_the_sdk_pages_through_a_small_page_size(client: genai.Client) -> None:
    pager = client.models.list(config={"page_size": 2})

    assert len([m.name for m in pager]) == len(CURRENT)


@pytest.mark.parametrize("model", SHUTDOWN)
def test_shut_down_models_are_not_listed_and_answer_404_as_unknown_models_do(emulator, model: str) -> None:
    listed = [m["name"] for m in emulator.admin.get("/v1beta/models", headers=KEY).json()["models"]]
    response = emulator.admin.post(f"/v1beta/models/{model}:generateContent", json=BODY, headers=KEY)
    got = emulator.admin.get(f"/v1beta/models/{model}", headers=KEY)

    assert f"models/{model}" not in listed
    assert response.status_code == 404 and got.status_code == 404
    error = response.json()["error"]
    assert error["status"] == "NOT_FOUND"
    assert error["message"] == (f"models/{model} is not found for API version v1beta, or is not supported for "
                                "generateContent. Call ListModels to see the list of available models and their "
                                "supported methods.")


def test_a_model_disappears_at_runtime(emulator, client: genai.Client) -> None:
    assert client.models.generate_content(model="gemini-3.6-flash", contents="before").text

    emulator.configure(shutdown_models=["gemini-3.6-flash"])

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3.6-flash", contents="after")
    assert caught.value.code == 404
    assert "models/gemini-3.6-flash" not in [m.name for m in client.models.list()]


def test_a_deprecated_model_is_listed_served_and_says_so_in_model_status(emulator, client: genai.Client) -> None:
    emulator.configure(deprecated_models={"gemini-3.5-flash": "2027-03-01T00:00:00Z"})

    response = client.models.generate_content(model="gemini-3.5-flash", contents="still here?")
    stream = list(client.models.generate_content_stream(model="gemini-3.5-flash", contents="still here?"))
    current = client.models.generate_content(model="gemini-3.8-flash", contents="still here?")

    status = response.model_status
    assert status.model_stage.value == "LEGACY"
    assert status.retirement_time.isoformat().startswith("2027-03-01")
    assert "gemini-3.5-flash" in status.message
    assert stream[-1].model_status == status
    assert current.model_status is None
    assert "models/gemini-3.5-flash" in [m.name for m in client.models.list()]


def test_the_default_deprecated_set_is_the_deprecations_page(client: genai.Client) -> None:
    response = client.models.generate_content(model="gemini-3.1-flash-lite", contents="hello")

    assert response.model_status.retirement_time.isoformat().startswith("2027-05-07")


def test_a_shut_down_model_can_be_served_again_for_tests_that_need_it(emulator, client: genai.Client) -> None:
    emulator.configure(models=["gemini-2.5-flash"], shutdown_models=[])

    assert client.models.generate_content(model="gemini-2.5-flash", contents="legacy").text
    # Deprecated models stay listed beside the `models` knob.
    assert [m.name for m in client.models.list()] == ["models/gemini-2.5-flash", "models/gemini-3.1-flash-lite"]
