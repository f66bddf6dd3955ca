"""The model catalogue: what each emulated model is, and which models are served, deprecated or gone.

A model's `ModelSpec` drives its `models.list` entry and its thinking rules. Which names are served
is configuration (`models`, `deprecated_models`, `shutdown_models` knobs, changeable at runtime), so a
test can make a model vanish and see the 404 the API sends for an unknown model.

Sources (late 2026): the deprecations page (ai.google.dev/gemini-api/docs/deprecations, copies read
2026-09/11) for the 3.x names and dates; the Flex page's supported-model list (2026-09-23); live
probes published in public repositories (2026-10-07) for the thinking-level refusals of 3.8 Flash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.textgen import bare_model

#: Thinking levels in increasing order (google.genai.types.ThinkingLevel in SDK 3.4 and 3.6).
LEVELS: tuple[str, ...] = ("MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")
#: Thought tokens spent at each level (an emulator rule: MINIMAL is "close to no thinking").
LEVEL_TOKENS: dict[str, int] = {"MINIMAL": 0, "LOW": 128, "MEDIUM": 512, "HIGH": 2048, "XHIGH": 8192}
#: Thought tokens of a dynamic budget (-1) on a budget-style model.
DYNAMIC_TOKENS = 1024
#: Methods a generative model lists (as the real models.list shows for 2.5/3.x models).
GENERATION_METHODS: tuple[str, ...] = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
INPUT_LIMIT = 1_048_576
OUTPUT_LIMIT = 65_536


@dataclass(frozen=True)
class ModelSpec:
    """One model: its listing fields and how it thinks."""

    name: str
    display_name: str
    description: str
    version: str = "001"
    input_limit: int = INPUT_LIMIT
    output_limit: int = OUTPUT_LIMIT
    #: "level" (Gemini 3: thinkingLevel, thinkingBudget accepted for compatibility), "budget" (2.5), "none".
    thinking: str = "level"
    levels: tuple[str, ...] = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
    default_level: str = "MEDIUM"
    #: Allowed positive thinkingBudget range; `budget_off` says whether 0 turns thinking off.
    budget_range: tuple[int, int] = (128, 32_768)
    budget_off: bool = False
    #: Whether the model thinks when the request has no thinkingConfig (see the default_thinking knob).
    thinks_by_default: bool = True
    methods: tuple[str, ...] = GENERATION_METHODS
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gemini3(self) -> bool:
        """Gemini 3 family: thought signatures on answers, thinkingLevel."""
        return self.thinking == "level"


def _flash(version: str, released: str, *, levels: tuple[str, ...] = LEVELS[:4], default: str = "MEDIUM") -> ModelSpec:
    name = f"gemini-{version}-flash"
    return ModelSpec(name, f"Gemini {version} Flash",
                     f"Gemini {version} Flash, a fast multimodal thinking model (released {released}).",
                     levels=levels, default_level=default)


def _lite(version: str, released: str) -> ModelSpec:
    name = f"gemini-{version}-flash-lite"
    return ModelSpec(name, f"Gemini {version} Flash-Lite",
                     f"Gemini {version} Flash-Lite, the lowest-cost Gemini {version} model (released {released}).",
                     default_level="MINIMAL")


#: Models served by default (the `models` knob), newest first.
CURRENT: tuple[ModelSpec, ...] = (
    # 3.7 Flash and later refuse MINIMAL ("Thinking level MINIMAL is not supported for this model"), probed live
    # on 3.8 Flash 2026-10-07; XHIGH exists in SDK 3.4/3.6 but which models take it is not published: a guess.
    _flash("3.8", "2026-09-02", levels=("LOW", "MEDIUM", "HIGH", "XHIGH")),
    _flash("3.7", "2026-08-13", levels=("LOW", "MEDIUM", "HIGH", "XHIGH")),
    _flash("3.6", "2026-07-21"),
    _flash("3.5", "2026-05-19"),
    _lite("3.5", "2026-07-21"),
    _lite("3.1", "2026-05-07"),
    ModelSpec("gemini-3.1-pro-preview", "Gemini 3.1 Pro Preview",
              "Preview of Gemini 3.1 Pro, the most capable Gemini 3.1 model (released 2026-02-19).",
              version="3.1-pro-preview-02-2026", levels=("LOW", "MEDIUM", "HIGH"), default_level="HIGH"),
    ModelSpec("gemini-3-flash-preview", "Gemini 3 Flash Preview",
              "Preview of Gemini 3 Flash (released 2025-12-17).", version="3-flash-preview-12-2025",
              default_level="HIGH"),
    ModelSpec("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite",
              "Stable version of Gemini 2.5 Flash-Lite, released in July of 2025.", thinking="budget",
              budget_range=(512, 24_576), budget_off=True, thinks_by_default=False),
)
#: Known models no longer served by default (the `shutdown_models` knob): they answer 404 NOT_FOUND.
SHUTDOWN: tuple[str, ...] = (
    "gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-2.0-flash-001", "gemini-2.0-flash-lite",
    "gemini-2.0-flash-lite-001", "gemini-3-pro-preview",
)
#: Served models with an announced shutdown (the `deprecated_models` knob): model -> retirement time.
#: gemini-3.1-flash-lite: "May 7, 2027" on the deprecations page (copy read 2026-11).
DEPRECATED: dict[str, str] = {"gemini-3.1-flash-lite": "2027-05-07T00:00:00Z"}
#: Specs of names outside CURRENT that a test may still serve (legacy budget-style models).
LEGACY: dict[str, ModelSpec] = {
    "gemini-2.5-flash": ModelSpec("gemini-2.5-flash", "Gemini 2.5 Flash",
                                  "Stable version of Gemini 2.5 Flash, released in June of 2025.", thinking="budget",
                                  budget_range=(1, 24_576), budget_off=True),
    "gemini-2.5-pro": ModelSpec("gemini-2.5-pro", "Gemini 2.5 Pro",
                                "Stable release of Gemini 2.5 Pro, released in June of 2025.", thinking="budget",
                                budget_range=(128, 32_768)),
}
_BY_NAME: dict[str, ModelSpec] = {spec.name: spec for spec in CURRENT} | LEGACY


def spec_for(model: str) -> ModelSpec:
    """The spec of `model`: a known one, or one derived from the name (2.x thinks by budget, 1.x/2.0 not)."""
    name = bare_model(model)
    if name in _BY_NAME:
        return _BY_NAME[name]
    pretty = " ".join(word.capitalize() for word in name.split("-"))
    if name.startswith(("gemini-2.5", "gemini-2-5")):
        return ModelSpec(name, pretty, f"Emulated {pretty}.", thinking="budget", budget_range=(1, 24_576),
                         budget_off=True)
    if name.startswith(("gemini-1", "gemini-2")):
        return ModelSpec(name, pretty, f"Emulated {pretty}.", thinking="none", output_limit=8192,
                         thinks_by_default=False)
    return ModelSpec(name, pretty, f"Emulated {pretty}.")


def model_resource(spec: ModelSpec) -> dict[str, Any]:
    """The Model resource as `models.list` / `models.get` return it (the list carries no deprecation field)."""
    body: dict[str, Any] = {
        "name": f"models/{spec.name}",
        "baseModelId": spec.name,
        "version": spec.version,
        "displayName": spec.display_name,
        "description": spec.description,
        "inputTokenLimit": spec.input_limit,
        "outputTokenLimit": spec.output_limit,
        "supportedGenerationMethods": list(spec.methods),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }
    if spec.thinking != "none":
        body["thinking"] = True
    return body | spec.extra


def model_status(model: str, retirement: str) -> dict[str, Any]:
    """`modelStatus` of an answer from a deprecated model (google.genai.types.ModelStatus).

    The stage is LEGACY, the SDK's "on the path to deprecation ... only existing customers can use this
    model": its DEPRECATED and RETIRED stages say the model "cannot be used", which an answer contradicts.
    """
    return {
        "modelStage": "LEGACY",
        "retirementTime": retirement,
        "message": f"{model} is deprecated and will be shut down on {retirement[:10]}. Please migrate to a newer "
        "model: https://ai.google.dev/gemini-api/docs/deprecations",
    }
