"""The OpenAI-compatible request bodies ponder accepts, validated once at the edge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from ponder.types import MAX_NEW_TOKENS, MAX_SEED, MAX_TEMPERATURE


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_tokens: int | None = Field(None, ge=1, description="generated tokens for the whole search",
                                   validation_alias=AliasChoices("max_tokens", "max_tokens_total"))
    max_samples: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0, description="deadline: the best answer so far is returned then",
                                      validation_alias=AliasChoices("max_seconds", "deadline_s"))


class PonderOptions(BaseModel):
    """``extra_body={"ponder": {...}}``: choose the strategy, its parameters, its budget and its scorer."""

    model_config = ConfigDict(extra="forbid")
    strategy: str | None = Field(None, description="strategy name or spec, e.g. beam?width=4")
    params: dict[str, Any] = Field(default_factory=dict)
    budget: BudgetIn | None = None
    scorer: str | None = None
    instruction: str | None = Field(None, description="replaces ponder's answer-format instruction; '' for none")
    trace: bool = Field(False, description="the whole trace in the ponder field (every candidate's text, steps and "
                                           "executions, and a tree search's tree); streamed, the search's events as it runs")


class _Common(BaseModel):
    model_config = ConfigDict(extra="allow")  # other OpenAI fields (user, logit_bias, ...) are accepted and ignored
    model: str = Field(..., min_length=1, max_length=256)
    n: int = Field(1, ge=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS, description="tokens per completion the strategy samples")
    temperature: float | None = Field(None, ge=0, le=MAX_TEMPERATURE, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stop: str | list[str] | None = Field(None, description="honoured by strategies that take stop strings; a 400 for the rest")
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    ponder: PonderOptions | None = None


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None

    @field_validator("messages")
    @classmethod
    def _has_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" and m.text().strip() for m in messages):
            raise ValueError("messages must contain a non-empty user message")
        return messages


class CompletionRequest(_Common):
    prompt: str = Field(..., min_length=1)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
