"""The registry of scorers, named by spec like strategies: ``confidence?mode=lowest_window``, ``judge``,
``code``, ``reference``, ``reward?url=http://127.0.0.1:8000/v1&kind=prm``. Built-ins are entry points in the group
``ponder.scorers``, as plug-ins are.

>>> build_scorer("confidence?mode=tail").name
'confidence-tail'
>>> build_scorer("oracle")
Traceback (most recent call last):
...
ponder.errors.InvalidRequest: unknown scorer 'oracle'; known scorers: code, confidence, judge, probe, reference, reward
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ponder.errors import InvalidRequest
from ponder.protocols import Generator, ReadsHiddenStates, Scorer
from ponder.specs import load_entry_points, split_spec, validate

GROUP = "ponder.scorers"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfidenceParams(_Params):
    mode: Literal["mean", "lowest_window", "tail"] = "mean"
    window: int = Field(32, ge=1)


class JudgeParams(_Params):
    top_logprobs: int = Field(20, ge=2, le=20)


class CodeParams(_Params):
    wall_seconds: float = Field(10.0, gt=0, le=120)
    memory_mb: int = Field(512, ge=64, le=8192)


class RewardParams(_Params):
    url: str | None = Field(None, description="the reward server (library and CLI; a server's clients name one instead)")
    name: str | None = Field(None, description="a reward server configured by `ponder serve --reward-url NAME=URL`")
    model: str = "reward"
    kind: Literal["prm", "orm"] = "prm"
    step_separator: str = "<extra_0>"
    positive_index: int = Field(1, ge=0)


class ProbeParams(_Params):
    path: str | None = Field(None, description="a probe file from `ponder verifier train` (library and CLI; a server's clients name one "
                                               "instead); none: the probe shipped for the model, where one is")
    name: str | None = Field(None, description="a probe configured by `ponder serve --probe NAME=FILE`")


@dataclass(frozen=True)
class ScorerInfo:
    name: str
    build: Callable[[BaseModel, Generator | None], Scorer]
    params: type[BaseModel]
    summary: str
    needs_generator: bool = False
    operator_params: tuple[str, ...] = ()  # parameters a server's clients may not set (URLs, paths): the operator's


def _confidence(p: ConfidenceParams, gen):
    from ponder.scorers.confidence import ConfidenceScorer

    return ConfidenceScorer(p.mode, p.window)


def _judge(p: JudgeParams, gen):
    from ponder.scorers.judge import JudgeScorer

    if gen is None:
        raise InvalidRequest("the judge scorer needs a generator to ask (the model being searched, by default)")
    return JudgeScorer(gen, top_logprobs=p.top_logprobs)


def _code(p: CodeParams, gen):
    from ponder.scorers.code import CodeVerifier
    from ponder.sandbox import SandboxLimits

    return CodeVerifier(SandboxLimits(wall_seconds=p.wall_seconds, cpu_seconds=max(1, int(p.wall_seconds)), memory_mb=p.memory_mb))


def _reference(p: _Params, gen):
    from ponder.scorers.reference import ReferenceScorer

    return ReferenceScorer()


def _reward(p: RewardParams, gen):
    from ponder.scorers.reward_http import RewardHTTPScorer

    if p.url is None:
        raise InvalidRequest("the reward scorer needs url=… (or, through ponder serve, name=… of a --reward-url)")
    return RewardHTTPScorer(p.url, model=p.model, kind=p.kind, step_separator=p.step_separator, positive_index=p.positive_index)


def _probe(p: ProbeParams, gen):
    from ponder.scorers.probe import ProbeScorer

    if gen is None:
        raise InvalidRequest("the probe scorer reads the hidden states of the model being searched: it needs its generator")
    path = p.path
    if path is None and isinstance(gen, ReadsHiddenStates):  # the probe shipped for this model, if one is
        from ponder.verifier.bundled import shipped_probe

        found = shipped_probe(gen.model_sha256)
        if found is None:
            raise InvalidRequest("no probe ships for this model: give path=FILE (a probe from `ponder verifier train`; "
                                 "through ponder serve, name=… of a --probe)")
        path = str(found)
    return ProbeScorer(gen, path)


CONFIDENCE = ScorerInfo("confidence", _confidence, ConfidenceParams, "the trace's own token confidence (DeepConf); free")
JUDGE = ScorerInfo("judge", _judge, JudgeParams, "P(yes) of a judge model asked whether the answer or step is correct",
                   needs_generator=True)
CODE = ScorerInfo("code", _code, CodeParams, "runs the program against the problem's tests in the sandbox")
REFERENCE = ScorerInfo("reference", _reference, _Params, "compares the final answer with the problem's reference")
PROBE = ScorerInfo("probe", _probe, ProbeParams, "a learned verifier on the model's own hidden states (ponder verifier train)",
                   needs_generator=True, operator_params=("path",))
REWARD = ScorerInfo("reward", _reward, RewardParams, "a PRM/ORM served over HTTP (vLLM pooling/classify)",
                    operator_params=("url",))


@functools.cache
def available() -> dict[str, ScorerInfo]:
    return load_entry_points(GROUP, ScorerInfo)


def build_scorer(spec: str, generator: Generator | None = None) -> Scorer:
    name, values = split_spec(spec, "scorer")
    scorers = available()
    if name not in scorers:
        raise InvalidRequest(f"unknown scorer {name!r}; known scorers: {', '.join(scorers)}")
    info = scorers[name]
    return info.build(validate(info.params, values, f"scorer {name!r}"), generator)
