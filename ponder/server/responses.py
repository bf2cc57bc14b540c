"""The OpenAI response shapes: errors, chat and text completions with ponder's extra field, and SSE events."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from ponder.errors import BackendUnavailable, ContextOverflow, InvalidRequest, PonderError
from ponder.types import Result


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.headers = status, message, type_, param, headers or {}

    @classmethod
    def from_backend(cls, exc: PonderError) -> ApiError:
        """The HTTP error for a failure inside the search: too long a prompt is the client's, the rest upstream's."""
        if isinstance(exc, ContextOverflow):
            return cls(400, str(exc), param="messages")
        if isinstance(exc, InvalidRequest):  # the request asked for something that cannot be done: the client's
            return cls(400, str(exc))
        if isinstance(exc, BackendUnavailable):
            return cls(502, f"the model backend is unavailable: {exc}", type_="upstream_error")
        return cls(502, f"the model backend failed: {exc}", type_="upstream_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": None}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def usage(results: list[Result]) -> dict[str, Any]:
    prompt = sum(r.usage.prompt_tokens for r in results)
    cached = sum(r.usage.cached_prompt_tokens for r in results)
    completion = sum(r.usage.completion_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": completion}}


def content(r: Result) -> str:
    if r.answer is not None:
        return r.answer
    return r.text or ""


def finish_reason(r: Result) -> str:
    if r.chosen is None:
        return "length"
    return "length" if r.candidates[r.chosen].finish_reason in ("length", "deadline") and r.answer is None else "stop"


def ponder_field(results: list[Result], texts: bool = False) -> dict[str, Any]:
    """The ``ponder`` field: the strategy, and each choice's result in the one JSON form (texts left out unless the
    request asked for the whole trace: the chosen trace is ``reasoning_content``)."""
    r0 = results[0]
    return {"strategy": r0.strategy, "params": dict(r0.params), "scorer": r0.scorer,
            "choices": [r.to_dict(texts=texts) for r in results]}


def chat_response(model: str, results: list[Result], rid: str, created: int, texts: bool = False) -> dict[str, Any]:
    return {
        "id": rid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": content(r), "reasoning_content": r.text or ""},
                     "logprobs": None, "finish_reason": finish_reason(r)} for i, r in enumerate(results)],
        "usage": usage(results), "ponder": ponder_field(results, texts),
    }


def completion_response(model: str, results: list[Result], rid: str, created: int, texts: bool = False) -> dict[str, Any]:
    return {
        "id": rid, "object": "text_completion", "created": created, "model": model,
        "choices": [{"index": i, "text": r.text or "", "logprobs": None, "finish_reason": finish_reason(r)} for i, r in enumerate(results)],
        "usage": usage(results), "ponder": ponder_field(results, texts),
    }


def sse(obj: Any) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()
