"""The shared vocabulary of ponder: frozen, self-validating value objects.

Everything that crosses a boundary (strategy <-> generator, engine <-> CLI/server/store) is one of these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from ponder.errors import InvalidRequest

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "eos", "length", "deadline", "cancelled", "low_confidence"]


# The one set of bounds on sampling parameters, wherever they enter (the library, a spec, the server's top-level
# fields and its ``ponder.params``): the server's schema and the strategies' options read these.
MAX_TEMPERATURE = 2.0
MAX_TOP_K = 1_000_000
MAX_SEED = 2**32 - 1
MAX_NEW_TOKENS = 1 << 20
MAX_STOP_STRINGS = 16
MAX_STOP_CHARS = 256


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidRequest(message)


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        _check(self.role in ("system", "user", "assistant"), f"message role must be system, user or assistant, got {self.role!r}")
        _check(isinstance(self.content, str), f"message content must be a string, got {type(self.content).__name__}")


@dataclass(frozen=True)
class Prompt:
    """What the model is asked: chat messages (rendered with the model's chat template) or raw text.

    Exactly one of ``messages`` and ``text`` is set. Use :meth:`chat` / :meth:`raw` to build one.
    """

    messages: tuple[Message, ...] = ()
    text: str | None = None

    def __post_init__(self) -> None:
        _check((len(self.messages) > 0) != (self.text is not None), "a prompt has either messages or raw text, not both or neither")

    @classmethod
    def chat(cls, user: str, system: str | None = None) -> Prompt:
        msgs = ((Message("system", system),) if system else ()) + (Message("user", user),)
        return cls(messages=msgs)

    @classmethod
    def raw(cls, text: str) -> Prompt:
        return cls(text=text)


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. Defaults follow llama.cpp's; ``temperature=0`` means greedy.

    >>> SamplingParams(top_p=1.5)
    Traceback (most recent call last):
    ...
    ponder.errors.InvalidRequest: top_p must be in (0, 1], got 1.5
    """

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0  # 0 = disabled
    min_p: float = 0.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None  # sample i of a request uses seed + i
    logprobs: int | None = None  # None: no logprobs; k >= 0: chosen token's logprob plus the top k alternatives
    ignore_eos: bool = False
    # (window, threshold): end a sample early (finish reason "low_confidence") once the mean chosen-token logprob of
    # its last `window` tokens falls below `threshold` (DeepConf's online early termination). Embedded backend only;
    # other backends ignore it and the strategy filters afterwards.
    confidence_stop: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        _check(math.isfinite(self.temperature) and 0 <= self.temperature <= MAX_TEMPERATURE,
               f"temperature must be in [0, {MAX_TEMPERATURE:g}], got {self.temperature}")
        _check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        _check(0 <= self.top_k <= MAX_TOP_K, f"top_k must be in [0, {MAX_TOP_K}], got {self.top_k}")
        _check(0 <= self.min_p < 1, f"min_p must be in [0, 1), got {self.min_p}")
        _check(1 <= self.max_tokens <= MAX_NEW_TOKENS, f"max_tokens must be in [1, {MAX_NEW_TOKENS}], got {self.max_tokens}")
        _check(self.seed is None or 0 <= self.seed <= MAX_SEED, f"seed must be in [0, {MAX_SEED}], got {self.seed}")
        _check(self.logprobs is None or 0 <= self.logprobs <= 20, f"logprobs must be in [0, 20], got {self.logprobs}")
        _check(all(isinstance(s, str) and s for s in self.stop), "stop strings must be non-empty strings")
        _check(len(self.stop) <= MAX_STOP_STRINGS and all(len(s) <= MAX_STOP_CHARS for s in self.stop),
               f"at most {MAX_STOP_STRINGS} stop strings of at most {MAX_STOP_CHARS} characters")
        _check(self.confidence_stop is None or (int(self.confidence_stop[0]) >= 1 and math.isfinite(self.confidence_stop[1])),
               f"confidence_stop must be (window >= 1, finite threshold), got {self.confidence_stop}")
        if not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class GenerationRequest:
    """Ask for ``n`` samples continuing ``prompt`` (+ an optional assistant ``prefix``, e.g. a partial reasoning trace).

    Backends that cache KV (the embedded one) evaluate the shared part of prompt and prefix once.
    ``deadline`` is an absolute ``time.monotonic()`` value; past it, samples end with finish reason ``deadline``.
    """

    prompt: Prompt
    n: int = 1
    params: SamplingParams = field(default_factory=SamplingParams)
    prefix: str = ""
    deadline: float | None = None
    # called with (sample index, new text) as the text grows, never with text a stop string will cut; a backend
    # that cannot stream ignores it. The embedded engine calls it from its own thread.
    on_text: Callable[[int, str], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check(1 <= self.n <= 256, f"n must be in [1, 256], got {self.n}")


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Sample:
    """One generated continuation. ``text`` excludes the stop string or end-of-sequence token that ended it."""

    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    logprobs: tuple[TokenLogprob, ...] | None = None
    num_tokens: int | None = None  # set by backends that report a count but not the token ids (HTTP servers)
    mean_logprob: float | None = None  # set where only the mean chosen-token logprob is known (replayed stored samples)

    @property
    def n_tokens(self) -> int:
        return self.num_tokens if self.num_tokens is not None else len(self.token_ids)


@dataclass(frozen=True)
class Usage:
    """Compute spent. ``prompt_tokens`` counts the prompt once per request (as the OpenAI API does);
    ``cached_prompt_tokens`` of those were reused from cache rather than evaluated."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    requests: int = 0
    tool_calls: int = 0  # programs executed (program-aided reasoning, tool calls)
    tool_seconds: float = 0.0  # their wall time in the sandbox (part of ``seconds`` when they ran in the search)

    @property
    def evaluated_prompt_tokens(self) -> int:
        return self.prompt_tokens - self.cached_prompt_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.cached_prompt_tokens + other.cached_prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.seconds + other.seconds,
            self.requests + other.requests,
            self.tool_calls + other.tool_calls,
            self.tool_seconds + other.tool_seconds,
        )

    @staticmethod
    def total(usages: Sequence[Usage]) -> Usage:
        out = Usage()
        for u in usages:
            out = out + u
        return out

    def with_seconds(self, seconds: float) -> Usage:
        return replace(self, seconds=seconds)


@dataclass(frozen=True)
class Completion:
    """The answer to one GenerationRequest: its samples, in order, and what they cost."""

    samples: tuple[Sample, ...]
    usage: Usage


# --- the search vocabulary: what strategies take and return -------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A question to answer, with its reference answer when known (evaluation) and how to ask for the answer.

    ``instruction`` is appended to the question so the final answer can be extracted (see
    :mod:`ponder.scorers.answers`); tasks with their own format set their own, or ``None``.
    """

    question: str
    answer: str | None = None
    system: str | None = None
    instruction: str | None = "Reason step by step, then give the final answer on the last line as: The answer is <answer>."
    id: str | None = None
    metadata: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        _check(isinstance(self.question, str) and self.question.strip() != "", "the question is empty")

    def prompt(self) -> Prompt:
        text = f"{self.question}\n\n{self.instruction}" if self.instruction else self.question
        return Prompt.chat(text, self.system)

    def meta(self, key: str, default: object = None) -> object:
        return dict(self.metadata).get(key, default)


@dataclass(frozen=True)
class Budget:
    """The most a strategy may spend on one problem; ``None`` means no limit on that axis.

    Strategies check it before asking for more and return their best-so-far answer when it runs out.

    >>> Budget(max_samples=0)
    Traceback (most recent call last):
    ...
    ponder.errors.InvalidRequest: max_samples must be >= 1, got 0
    """

    max_tokens: int | None = None  # generated tokens, all candidates together
    max_samples: int | None = None  # sampled completions (or tree expansions)
    max_seconds: float | None = None  # wall time

    def __post_init__(self) -> None:
        for name in ("max_tokens", "max_samples"):
            v = getattr(self, name)
            _check(v is None or (isinstance(v, int) and v >= 1), f"{name} must be >= 1, got {v}")
        _check(self.max_seconds is None or self.max_seconds > 0, f"max_seconds must be > 0, got {self.max_seconds}")


@dataclass(frozen=True)
class Execution:
    """One program run in the sandbox on a candidate's behalf: what ran, what it printed, how it ended."""

    code: str
    stdout: str
    stderr: str
    ok: bool  # exit status 0 within the limits
    seconds: float
    error: str | None = None  # why it failed: "timeout", "exit status 1", "output cut at the cap", ...

    @property
    def output(self) -> str:
        """What a reader (or the model, in a tool loop) is shown: stdout, else the end of the error text."""
        if self.ok:
            return self.stdout
        tail = self.stderr.strip().splitlines()[-3:]
        return self.stdout + ("\n".join(tail) or self.error or "error") + "\n"


@dataclass(frozen=True)
class Candidate:
    """One finished (or cut-off) attempt at the problem: its text, its extracted answer, and its scores.

    ``key`` is the normalised answer that votes are counted on; ``confidence`` the mean token logprob when known.
    """

    text: str
    answer: str | None
    key: str | None
    tokens: int
    finish_reason: FinishReason
    steps: tuple[str, ...] = ()
    score: float | None = None
    step_scores: tuple[float, ...] = ()
    confidence: float | None = None
    token_logprobs: tuple[float, ...] | None = field(default=None, repr=False)  # chosen-token logprobs, when known
    step_logprobs: tuple[tuple[float, ...], ...] | None = field(default=None, repr=False)
    executions: tuple[Execution, ...] = ()  # programs run for this candidate (its answer may come from them)
    completion: str | None = field(default=None, repr=False)  # the model's own text, where ``text`` adds to it (output)

    def trace(self) -> Trace:
        steps = self.steps or (self.text,)
        step_lp = self.step_logprobs
        if step_lp is None and self.token_logprobs is not None:
            step_lp = (self.token_logprobs,) if len(steps) == 1 else None
        return Trace(self.text, steps, step_lp, self.finish_reason in ("eos", "stop"), self.key)


@dataclass(frozen=True)
class TreeNode:
    """One node of a tree search as it ended (``Result.tree``): a reasoning step, what it scored and cost.

    ``id`` 0 is the root (the empty trace); every other node names its ``parent``. ``cached_tokens`` are the prompt
    tokens of the request that generated the step which the backend reused from its cache (the node's prefix, when
    the engine had it) rather than evaluated; ``pruned`` marks a branch the search dropped (beam's cut, DVTS's
    losing siblings); ``candidate`` is the index in ``Result.candidates`` of the complete trace ending here."""

    id: int
    parent: int | None
    step: str
    depth: int
    tokens: int  # generated for this step
    finish: str | None = None  # None: an open (partial) trace; eos / length / deadline: a terminal
    score: float | None = None
    visits: int | None = None  # MCTS only
    value: float | None = None  # MCTS only: mean backed-up value
    cached_tokens: int | None = None
    pruned: bool = False
    chosen: bool = False  # on the path of the chosen candidate
    candidate: int | None = None

    def to_dict(self, *, texts: bool = True) -> dict[str, object]:
        d: dict[str, object] = {"id": self.id, "parent": self.parent, "depth": self.depth, "tokens": self.tokens,
                                "finish": self.finish, "score": self.score, "visits": self.visits,
                                "value": None if self.value is None else round(self.value, 4),
                                "cached_tokens": self.cached_tokens, "pruned": self.pruned, "chosen": self.chosen,
                                "candidate": self.candidate}
        if texts:
            d["step"] = self.step
        return d


@dataclass(frozen=True)
class Result:
    """What a strategy returns: the chosen answer, every candidate it considered, the votes and what it cost."""

    strategy: str
    answer: str | None
    candidates: tuple[Candidate, ...]
    usage: Usage
    seconds: float
    params: tuple[tuple[str, object], ...] = ()
    votes: tuple[tuple[str, float], ...] = ()  # (normalised answer, weight), heaviest first
    chosen: int | None = None  # index in candidates of the one whose answer was chosen
    stopped_by: str | None = None  # which budget axis ended the search early, if any
    scorer: str | None = None  # the scorer that judged the candidates, if any
    extra: tuple[tuple[str, object], ...] = ()  # strategy-specific facts (samples to pass, tree size, ...)
    tree: tuple[TreeNode, ...] = ()  # tree searches: every node they built, the root first

    @property
    def text(self) -> str | None:
        return self.candidates[self.chosen].text if self.chosen is not None else None

    def to_dict(self, *, texts: bool = True) -> dict[str, object]:
        """The one JSON form of a result (the CLI's ``--json``, the server's ``ponder`` field): every candidate
        with its answer, scores, tokens and, with ``texts``, its text, steps and executions.

        >>> r = Result("greedy", "4", (Candidate("2 + 2 = 4", "4", "4", 5, "eos"),), Usage(10, 0, 5, 0.5, 1), 0.5, chosen=0)
        >>> d = r.to_dict()
        >>> d["answer"], d["usage"]["total_tokens"], d["candidates"][0]["text"]
        ('4', 15, '2 + 2 = 4')
        """
        def candidate(c: Candidate) -> dict[str, object]:
            d: dict[str, object] = {"answer": c.answer, "key": c.key, "tokens": c.tokens, "finish_reason": c.finish_reason,
                                    "confidence": None if c.confidence is None else round(c.confidence, 4), "score": c.score}
            if c.step_scores:
                d["step_scores"] = list(c.step_scores)
            if texts:
                d["text"] = c.text
                if c.steps:
                    d["steps"] = list(c.steps)
                if c.executions:
                    d["executions"] = [{"code": e.code, "stdout": e.stdout, "stderr": e.stderr, "ok": e.ok,
                                        "seconds": round(e.seconds, 4), "error": e.error} for e in c.executions]
            return d

        u = self.usage
        return {
            "strategy": self.strategy, "answer": self.answer, "votes": dict(self.votes), "chosen": self.chosen,
            "stopped_by": self.stopped_by, "scorer": self.scorer, "params": dict(self.params),
            "extra": dict(self.extra), "seconds": round(self.seconds, 3),
            "usage": {"prompt_tokens": u.prompt_tokens, "cached_prompt_tokens": u.cached_prompt_tokens,
                      "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens, "requests": u.requests,
                      "tool_calls": u.tool_calls, "tool_seconds": round(u.tool_seconds, 3), "seconds": round(self.seconds, 3)},
            "candidates": [candidate(c) for c in self.candidates],
            **({"tree": [n.to_dict(texts=texts) for n in self.tree]} if self.tree else {}),
        }


@dataclass(frozen=True)
class Trace:
    """What a scorer judges: a (partial or complete) response, its reasoning steps, and its token logprobs.

    ``steps`` are the response split at the strategy's step delimiter (tree search) or ``(text,)``;
    ``step_logprobs[i]`` holds the chosen-token logprobs of step ``i`` when the generator returned them;
    ``answer`` the normalised answer the path votes for, where the strategy knows it (a program's printed value).
    """

    text: str
    steps: tuple[str, ...] = ()
    step_logprobs: tuple[tuple[float, ...], ...] | None = None
    complete: bool = True
    answer: str | None = None

    @property
    def logprobs(self) -> tuple[float, ...] | None:
        if self.step_logprobs is None:
            return None
        return tuple(x for step in self.step_logprobs for x in step)

    def step_prefixes(self) -> tuple[str, ...]:
        """The text as it stood at the end of each step, delimiters between steps included (tree search joins its
        steps with its delimiter); the last is the whole text, with whatever follows the last step (a program's
        output).

        >>> Trace("x = 3\\n\\ny = x + 4\\n\\nprint(y)\\n```output\\n7\\n```", ("x = 3", "y = x + 4", "print(y)")).step_prefixes()
        ('x = 3', 'x = 3\\n\\ny = x + 4', 'x = 3\\n\\ny = x + 4\\n\\nprint(y)\\n```output\\n7\\n```')
        """
        out, pos, joined = [], 0, ""
        for step in self.steps:
            at = self.text.find(step, pos)
            if at < 0:  # steps that are not pieces of the text (a caller's own split): as they join
                joined += step
                out.append(joined)
                continue
            pos = at + len(step)
            joined = self.text[:pos]
            out.append(joined)
        if out:
            out[-1] = self.text
        return tuple(out)

    @classmethod
    def of(cls, text: str, logprobs: Sequence[float] | None = None, complete: bool = True) -> Trace:
        return cls(text, (text,), (tuple(logprobs),) if logprobs is not None else None, complete)
