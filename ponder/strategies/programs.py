"""Computing with code: the model writes a program, the sandbox runs it, and the printed value is the answer.

``program`` is program-aided reasoning (PAL, Gao et al. 2022, arXiv:2211.10435; program of thoughts, Chen et al.
2022, arXiv:2211.12588): ``n`` programs in one batch (the first the greedy decode), each executed through the
Executor (the kernel sandbox by default), and a vote over the executed answers. A small model that sets a
problem up right and then writes 42 + 46 = 98 gets the arithmetic done by Python instead.

``tir`` is tool-integrated reasoning: the model reasons in text and computes in python blocks whose output is
appended to its own trace, decoding on from the cached prefix.

Strategies see the Executor protocol only; the default is built here, not imported from a backend.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from pydantic import Field

from ponder.protocols import Executor, Generator
from ponder.strategies.base import Meter, SamplingOptions, fit_samples, make_candidate, result, vote
from ponder.strategies.execution import OUTPUT_SHOWN, default_executor, executed_candidates
from ponder.strategies.prompts import PAL, TIR
from ponder.types import Budget, Execution, GenerationRequest, Problem, Result, Usage

PAL_INSTRUCTION = PAL


class ProgramParams(SamplingOptions):
    n: int = Field(8, ge=1, le=256, description="programs sampled in one batch")
    greedy_first: bool = Field(True, description="the first program is the greedy decode, the others sampled (seed, seed + 1, ...)")
    wall_seconds: float = Field(2.0, gt=0, le=60, description="wall time each program may run in the sandbox")
    max_tokens: int = Field(384, ge=1, le=1 << 20, description="new tokens per program")


async def program(problem: Problem, generator: Generator, scorer, budget: Budget, params: ProgramParams,
                  *, executor: Executor | None = None) -> Result:
    """Program-aided reasoning: ``n`` programs, each run in the sandbox, a vote over what they printed. A program
    that fails, runs out of time or prints nothing abstains (``extra``: how many ran, failed and abstained); ties
    go as in ``majority``."""
    meter = Meter(budget)
    n, max_tokens = fit_samples(meter, params.n, params.max_tokens)
    prompt = params.prompt_for(problem, default="pal")
    requests = []
    if n and params.greedy_first:
        requests.append(GenerationRequest(prompt, n=1, params=params.sampling(temperature=0.0, max_tokens=max_tokens, logprobs=0, seed=None),
                                          deadline=meter.deadline))
    if n - len(requests) > 0:
        requests.append(GenerationRequest(prompt, n=n - len(requests), params=params.sampling(max_tokens=max_tokens, logprobs=0),
                                          deadline=meter.deadline))
    completions = await generator.generate(requests) if requests else []
    meter.add(completions)
    samples = [s for c in completions for s in c.samples]
    candidates = await executed_candidates(samples, meter, executor, params.wall_seconds)
    v = vote(candidates)
    runs = [c.executions[0] for c in candidates if c.executions]
    extra = {"programs": len(samples), "ran": len(runs), "failed": sum(1 for e in runs if not e.ok),
             "abstained": sum(1 for c in candidates if c.key is None)}
    return result("program", params, meter, candidates, chosen=v.chosen, votes=v.votes, extra=extra)


# -- tool-integrated reasoning ---------------------------------------------------------------------------------

TIR_INSTRUCTION = TIR

_FENCE = "```"


class TIRParams(SamplingOptions):
    n: int = Field(4, ge=1, le=256, description="traces decoded at once, each stepping on its own")
    max_calls: int = Field(4, ge=0, le=32, description="code blocks executed per trace; later blocks are left as text")
    wall_seconds: float = Field(2.0, gt=0, le=60, description="wall time each block may run in the sandbox")
    greedy_first: bool = Field(True, description="the first trace is decoded greedily, the others sampled")
    max_tokens: int = Field(1024, ge=1, le=1 << 20, description="new tokens per trace, over all its segments")


def open_python_block(text: str) -> str | None:
    """The code of a python block ``text`` opened and has not closed yet (text ends inside it), else None.

    >>> open_python_block("Let me compute.\\n```python\\nprint(2 + 3)\\n")
    'print(2 + 3)\\n'
    >>> open_python_block("```python\\nx = 1\\n```\\nDone. ") is None, open_python_block("Look: ") is None
    (True, True)
    """
    parts = text.split(_FENCE)
    if len(parts) % 2 == 1:  # an even number of fences: every block is closed
        return None
    opened = parts[-1]
    header, _, code = opened.partition("\n")
    return code if header.strip().lower() in ("python", "py", "python3") else None


async def tir(problem: Problem, generator: Generator, scorer, budget: Budget, params: TIRParams,
              *, executor: Executor | None = None) -> Result:
    """Tool-integrated reasoning (ToRA, Gou et al. 2023, arXiv:2309.17452; Qwen2.5-Math's tool mode): the model
    reasons in text and writes python blocks when it wants to compute. Decoding stops at each fence; at the fence
    that closes a python block, the block runs in the sandbox and its output is appended to the same sequence
    (```output ... ```), an error with its message, so that the model can fix it, and decoding continues from the
    cached prefix (the engine reuses the trace's KV: no re-evaluation), up to ``max_calls`` executions a trace.
    ``n`` traces, each stepping on its own: a trace whose block runs, or whose segment ends early, goes on without
    waiting for the others (the engine batches whatever segments are decoding at the time); a vote over their
    final answers."""
    executor = executor or default_executor()
    meter = Meter(budget)
    n, max_tokens = fit_samples(meter, params.n, params.max_tokens)
    prompt = params.prompt_for(problem, default="tir")
    traces = [_TIRTrace() for _ in range(n)]

    async def step(i: int, t: _TIRTrace) -> None:
        greedy = params.greedy_first and i == 0
        while t.finish is None and not meter.exhausted():
            seed = None if params.seed is None or greedy else params.seed + i + 7919 * t.segments
            stop = (_FENCE,) if len(t.runs) < params.max_calls else ()
            [c] = await generator.generate([GenerationRequest(prompt, n=1, prefix=t.text, deadline=meter.deadline, params=params.sampling(
                temperature=0.0 if greedy else params.temperature, seed=seed, stop=stop, logprobs=0,
                max_tokens=max(1, max_tokens - t.tokens)))])
            meter.add([c])
            t.segments += 1
            s = c.samples[0]
            t.text += s.text
            t.tokens += s.n_tokens
            if s.logprobs:
                t.logprobs += [lp.logprob for lp in s.logprobs]
            if s.finish_reason != "stop":
                t.finish = s.finish_reason
                break
            if t.tokens >= max_tokens:
                t.finish = "length"
                break
            code = open_python_block(t.text)
            t.text += _FENCE
            if code is None:
                continue
            left = meter.seconds_left()
            wall = params.wall_seconds if left is None else max(0.05, min(params.wall_seconds, left))
            [e] = await executor.execute([code], wall_seconds=wall)
            meter.usage = meter.usage + Usage(tool_calls=1, tool_seconds=e.seconds)
            t.runs.append(e)
            t.text += f"\n```output\n{e.output[-OUTPUT_SHOWN:]}```\n"

    async with asyncio.TaskGroup() as group:  # one trace failing (a backend error) cancels the others
        for i, t in enumerate(traces):
            group.create_task(step(i, t))
    candidates = []
    for t in traces:
        ended = t.finish or ("deadline" if meter.exhausted() == "max_seconds" else "length")
        base = make_candidate(t.text, tokens=t.tokens, finish_reason=ended, token_logprobs=tuple(t.logprobs) or None)
        candidates.append(replace(base, executions=tuple(t.runs), steps=tuple(_segments(t.text))))
    v = vote(candidates)
    extra = {"segments": sum(t.segments for t in traces), "tool_calls": sum(len(t.runs) for t in traces),
             "failed": sum(1 for t in traces for e in t.runs if not e.ok)}
    return result("tir", params, meter, candidates, chosen=v.chosen, votes=v.votes, extra=extra)


@dataclass
class _TIRTrace:
    """One trace of ``tir`` as it grows: its text (segments, fences, output blocks), tokens, runs and end."""

    text: str = ""
    tokens: int = 0
    segments: int = 0
    finish: str | None = None
    runs: list[Execution] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)


def _segments(text: str) -> list[str]:
    """A trace's steps: the text up to and including each output block, then the rest."""
    out, rest = [], text
    while "```output\n" in rest:
        head, _, tail = rest.partition("```output\n")
        body, sep, after = tail.partition("```\n")
        out.append(head + "```output\n" + body + sep)
        rest = after
    return out + ([rest] if rest.strip() or not out else [])
