"""Run a grid of models x strategies x budgets on a task, storing every result and sample as it goes.

Sampling strategies (``greedy``, ``sample``, ``majority``, ``best_of_n``, ``weighted_best_of_n``) share one set of
samples per item and sampling parameters, drawn once at the largest budget; the result at budget k is derived from
the first k samples (as search-and-learn subsamples), and scorer judgements are stored per sample, so a whole set of
curves costs one sampling run of the largest budget plus one judgement per sample and scorer.

Strategies that decide online how many samples to draw, or where to stop one (``adaptive_majority``, ``auto``,
``deepconf``), run for real, but on a
``ReplayGenerator``: their requests for independent samples of the item's prompt are served from the same shared
samples (sample i is the draw with seed + i, the request a live run with that seed makes), drawing and storing more
only when they need more than are stored. So adaptive stopping is judged on the very sample stream the fixed-budget
vote sees (as Adaptive-Consistency evaluates it), and its cost is the tokens of the samples it used. A live rerun
draws from the same distribution but not token for token the same samples: llama.cpp's numerics depend on the batch
a sequence shares and on the cache state, and a sampled path that differs in one logit's last bit can diverge.
A confidence-stopped request (DeepConf's) is served the stored draws cut after the token where the stored logprobs'
sliding window falls below the threshold, as the engine cuts them while decoding: the tokens saved are the tokens
a live run does not generate. Anything else they ask for (other prompts, scorers' calls) goes to the live generator.

How each strategy is measured is declared by its registration (``StrategyInfo.evaluation``, ``budget_params``,
``choose``, ``anytime``): the evaluator keeps no table of names, so a plug-in strategy is evaluated like a built-in.
Other strategies map the budget onto their size parameter (``budget_params``) and run once per budget; strategies
with no size parameter run once. Anytime searches (``mcts``) run once, to the largest budget's size,
and answer at each smaller size on the way, each answer costed up to its point: the search after k iterations is
the k-iteration search. Everything is keyed in the store, so a killed run resumes where it stopped and a
finished one recomputes nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ponder.accounting import scorer_usage
from ponder.evaluation.contention import CpuWindow, cpu_model
from ponder.evaluation.replay import ReplayGenerator
from ponder.evaluation.store import Key, Store
from ponder.protocols import Generator
from ponder.strategies.base import SamplingOptions, make_candidate, vote
from ponder.strategies.execution import executes, printed_line
from ponder.strategies.registry import StrategyInfo, get, parse_spec, resolve_scorer
from ponder.tasks import Task
from ponder.types import Budget, Candidate, Problem, Result, Usage

@dataclass(frozen=True)
class EvalConfig:
    run: str
    task: str
    models: tuple[str, ...]
    strategies: tuple[str, ...]
    budgets: tuple[int, ...] = (1, 2, 4, 8, 16)
    limit: int = 20
    seed: int = 0
    workers: int = 4
    scorer: str | None = None
    max_seconds_per_item: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass
class Progress:
    total: int = 0
    done: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    on_change: Callable[[Progress], None] | None = None

    def advance(self, n: int = 1, skipped: bool = False) -> None:
        self.done += n
        if skipped:
            self.skipped += n
        if self.on_change:
            self.on_change(self)

    @property
    def eta_seconds(self) -> float | None:
        fresh = self.done - self.skipped
        if fresh <= 0:
            return None
        return (time.monotonic() - self.started) / fresh * (self.total - self.done)


# options added after stores were written: left out of a key at their empty default, so older keys still match
_OMITTED_WHEN_EMPTY = ("stop", "prompt", "shots", "bank")


def canonical_params(params: dict[str, Any]) -> str:
    """Strategy parameters as the store keys them (sorted JSON; options added later left out when empty)."""
    kept = {k: v for k, v in params.items() if not (k in _OMITTED_WHEN_EMPTY and not v)}
    return json.dumps(kept, sort_keys=True, default=str)


def spec_key(spec: str) -> tuple[str, str]:
    """The (strategy, params) a spec's results are stored under.

    >>> spec_key("majority?n=4")[0]
    'majority'
    """
    info, params = parse_spec(spec)
    return info.name, canonical_params(params.model_dump())


def stored_params(spec: str, scorer: str | None = None) -> tuple[str, str]:
    """The (strategy, params) a spec's results are stored under in a run with ``scorer``: its parameters, plus that
    scorer when one is named and the strategy uses a scorer (so a run judged by ``probe?path=…`` never passes for,
    or reuses, one judged by the strategy's default).

    >>> json.loads(stored_params("best_of_n?n=2", "probe?name=p")[1])["scorer"], stored_params("majority", "judge") == spec_key("majority")
    ('probe?name=p', True)
    """
    name, params_json = spec_key(spec)
    if scorer and get(name).default_scorer is not None:
        params_json = canonical_params({**json.loads(params_json), "scorer": scorer})
    return name, params_json


def samples_params(params) -> str:
    """The params a strategy's shared samples are stored under: its sampling options alone (seed aside), so every
    sampling strategy with the same options reads the same draws.

    >>> samples_params(parse_spec("weighted_best_of_n?prompt=pal&n=4")[1]) == samples_params(parse_spec("majority?prompt=pal")[1])
    True
    """
    return canonical_params({k: v for k, v in params.model_dump().items() if k in SamplingOptions.model_fields and k != "seed"})


def item_id(problem: Problem) -> str:
    return problem.id or problem.question[:64]


def units(info: StrategyInfo, budgets: tuple[int, ...]) -> list[int]:
    """The budgets a strategy is evaluated at: one for those with no size to vary (greedy, sample, auto)."""
    return list(budgets) if info.sized else [1]


def prefix_result(r: Result, k: int, choose: Callable[[Sequence[Candidate]], int | None]) -> Result:
    """The result a run of ``k`` candidates would have given: the strategy's own choice over the first ``k``, costed
    by their generated tokens (prompt tokens: one request's worth for k = 1, all of them otherwise; seconds: the
    run's, in proportion to the tokens; tool calls: theirs)."""
    cands = r.candidates[:k]
    chosen = choose(cands)
    v = vote(cands)  # the tally to report; the answer is the strategy's own choice
    total = sum(c.tokens for c in r.candidates) or 1
    share = sum(c.tokens for c in cands) / total
    requests = 1 if k == 1 else r.usage.requests
    prompt = r.usage.prompt_tokens * requests // max(1, r.usage.requests)
    executions = [e for c in cands for e in c.executions]
    usage = Usage(prompt_tokens=prompt, cached_prompt_tokens=min(prompt, r.usage.cached_prompt_tokens),
                  completion_tokens=sum(c.tokens for c in cands), seconds=r.usage.seconds * share, requests=requests,
                  tool_calls=len(executions), tool_seconds=sum(e.seconds for e in executions))
    return replace(r, candidates=cands, chosen=chosen, votes=v.votes, answer=cands[chosen].answer if chosen is not None else None,
                   usage=usage, seconds=r.seconds * share)


def stored_candidates(rows) -> list[Candidate]:
    """Stored samples as candidates: answers read from the stored text by today's rules (a cut-off path abstains),
    except an executed set's, which keep what their programs printed."""
    cands = [Candidate(text=r["text"], answer=r["answer"], key=r["key"], tokens=r["tokens"], finish_reason=r["finish"],
                       confidence=r["confidence"]) for r in rows]
    if rows and not executes(json.loads(rows[0]["params"]).get("prompt")):
        cands = [replace(c, answer=m.answer, key=m.key) for c, m in
                 ((c, make_candidate(c.text, tokens=c.tokens, finish_reason=c.finish_reason)) for c in cands)]
    return cands


# the window in which the strategy now running on an item started (each asyncio task has its own copy)
_WINDOW: contextvars.ContextVar[CpuWindow | None] = contextvars.ContextVar("ponder_eval_window", default=None)


class Evaluator:
    def __init__(self, store: Store, task: Task, config: EvalConfig, progress: Progress | None = None):
        self.store, self.task, self.config = store, task, config
        self.progress = progress or Progress()
        self._locks: dict[tuple, asyncio.Lock] = {}

    def plan_size(self, n_items: int) -> int:
        return sum(len(units(parse_spec(s)[0], self.config.budgets)) for s in self.config.strategies) * n_items * len(self.config.models)

    async def run_model(self, model: str, generator: Generator, problems: list[Problem]) -> None:
        sem = asyncio.Semaphore(self.config.workers)

        async def item(problem: Problem) -> None:
            async with sem:
                for spec in self.config.strategies:
                    await self._strategy(model, generator, problem, spec)

        await asyncio.gather(*(item(p) for p in problems))

    async def _strategy(self, model: str, generator: Generator, problem: Problem, spec: str) -> None:
        _WINDOW.set(CpuWindow.start())  # this task's own context: concurrent items each measure their own window
        info, base_params = parse_spec(spec)
        name, params_json = self.result_params(spec)
        key = Key(self.config.run, self.task.name, item_id(problem), model, name, params_json, self.config.seed)
        budgets = units(info, self.config.budgets)
        scorer = resolve_scorer(info, self.config.scorer, generator)
        todo = [b for b in budgets if not self.store.has_result(key, b)]
        stale: set[int] = set()
        # shared samples are judged for the strategies that use a scorer (best_of_n, weighted_best_of_n)
        shared = info.evaluation == "shared_samples"
        judged = shared and info.default_scorer is not None and scorer is not None
        if judged:  # a row stored before judgements had their cost undercounts: derive it again
            skey = self._samples_key(model, problem, base_params)
            unpriced = [i for i, (_, u) in self.store.scores(skey, getattr(scorer, "name", "scorer")).items() if u is None]
            stale = {b for b in budgets if b not in todo and unpriced and min(unpriced) < b}
            todo = sorted(set(todo) | stale)
        if not todo:
            self.progress.advance(len(budgets), skipped=True)
            return
        self.progress.advance(len(budgets) - len(todo), skipped=True)
        budget = Budget(max_seconds=self.config.max_seconds_per_item)
        seed_params = {"seed": self.config.seed} if "seed" in info.params.model_fields else {}
        if shared:
            rows = await self.shared_samples(model, generator, problem, base_params, max(budgets))
            scores = await self._scores(model, problem, info, base_params, rows, scorer) if judged else None
            for b in todo:
                self._put(key, b, self._derive(info, problem, rows[:b], scores), replace=b in stale)
                self.progress.advance()
            return
        largest = info.parse_params({**base_params.model_dump(), **seed_params, **info.budget_params(max(todo))})
        if info.evaluation == "anytime":  # one search to the largest budget, answering at each smaller one on the way
            sizes = {info.budget_params(b)[info.size_param]: b for b in todo}
            found = await info.anytime(problem, generator, scorer, budget, largest, tuple(sizes))
            for s, b in sorted(sizes.items()):
                self._put_run(key, b, problem, found[s], generator)
            return
        if info.evaluation == "prefix":  # one run at the largest budget; budget k chooses among its first k
            r = await info.run(problem, generator, scorer, budget, largest)
            if info.shares_draws:
                self._store_draws(model, problem, info, largest, r)
            for b in todo:
                self._put_run(key, b, problem, prefix_result(r, b, info.choose), generator)
            return
        for b in todo:
            params = info.parse_params({**base_params.model_dump(), **seed_params, **info.budget_params(b)})
            gen = self.replay(model, generator, problem) if info.evaluation == "replay" else generator
            r = await info.run(problem, gen, scorer, budget, params)
            self._put_run(key, b, problem, r, gen)

    def result_params(self, spec: str) -> tuple[str, str]:
        return stored_params(spec, self.config.scorer)

    def _put(self, key: Key, b: int, row: dict[str, Any], replace: bool = False) -> None:
        """Store a result row with the machine it ran on and how busy the rest of it was while this strategy ran on
        this item."""
        window = _WINDOW.get()
        self.store.put_result(key, b, {**row, "other_cpu": window.other_cores() if window else None,
                                       "machine": cpu_model() if window else None}, replace=replace)

    def _put_run(self, key: Key, b: int, problem: Problem, r: Result, gen: Generator) -> None:
        """Store a strategy run as the budget-``b`` result: each candidate is scored once (a sandbox run, for code
        tasks); the chosen one's score is the result's."""
        scores = [self.task.score(problem, c.text) for c in r.candidates]
        correct = scores[r.chosen] if r.chosen is not None and r.text else 0.0
        n_correct = sum(1 for s in scores if s > 0)
        trace = r.to_dict()
        for cand, s in zip(trace["candidates"], scores, strict=True):
            cand["correct"] = s
        trace.update(question=problem.question, reference=problem.answer)
        self._put(key, b, {"trace": trace,
            "answer": r.answer, "reference": problem.answer, "correct": correct, "prompt_tokens": r.usage.prompt_tokens,
            "cached_prompt_tokens": r.usage.cached_prompt_tokens, "completion_tokens": r.usage.completion_tokens,
            "seconds": r.seconds + getattr(gen, "seconds", 0.0), "n_candidates": len(r.candidates), "n_correct": n_correct,
            "stopped_by": r.stopped_by})
        self.progress.advance()

    @property
    def seed(self) -> int:
        return self.config.seed

    def stored_samples(self, model: str, problem: Problem, options: SamplingOptions) -> list:
        return self.store.samples(self._samples_key(model, problem, options))

    def replay(self, model: str, generator: Generator, problem: Problem) -> ReplayGenerator:
        """A generator serving ``problem``'s independent samples from the shared ones (see ReplayGenerator)."""
        return ReplayGenerator(self, model, generator, problem)

    def _samples_key(self, model: str, problem: Problem, base_params) -> Key:
        """Sampling strategies share one set of samples per item: keyed by the sampling parameters alone."""
        return Key(self.config.run, self.task.name, item_id(problem), model, "samples", samples_params(base_params),
                   self.config.seed)

    async def shared_samples(self, model, generator, problem, base_params, need: int):
        skey = self._samples_key(model, problem, base_params)
        rows = self.store.samples(skey)
        if len(rows) >= need:
            return rows
        async with self._sampling_lock(skey):
            rows = self.store.samples(skey)
            if len(rows) >= need:
                return rows
            majority = get("majority")
            sampling = {k: v for k, v in base_params.model_dump().items() if k in SamplingOptions.model_fields}
            params = majority.parse_params({**sampling, "seed": self.config.seed + len(rows), "n": need - len(rows)})
            r = await majority.run(problem, generator, None, Budget(max_seconds=self.config.max_seconds_per_item), params)
            total_tokens = sum(c.tokens for c in r.candidates) or 1
            self.store.put_samples(skey, [
                self._sample_row(problem, len(rows) + i, c, r.usage.prompt_tokens if i == 0 else 0, r.seconds * c.tokens / total_tokens)
                for i, c in enumerate(r.candidates)])
            return self.store.samples(skey)

    def _store_draws(self, model: str, problem: Problem, info: StrategyInfo, params, r: Result) -> None:
        """A run's independent draws as the item's shared samples (what replays serve and banks read): its greedy
        first draw as the temperature-0 set, the sampled ones (seed, seed + 1, ...) as the set at its temperature,
        under its prompt template. A set already stored is kept; the model's own text is stored, answers as the
        strategy read them (executed, for programs)."""
        values = {k: v for k, v in params.model_dump().items() if k in SamplingOptions.model_fields}
        values["prompt"] = values.get("prompt") or info.default_prompt
        cands = list(r.candidates)
        greedy = cands[:1] if getattr(params, "greedy_first", False) else []
        sets = [(SamplingOptions(**{**values, "temperature": 0.0}), greedy), (SamplingOptions(**values), cands[len(greedy):])]
        total_tokens = sum(c.tokens for c in cands) or 1
        for options, drawn in sets:
            skey = self._samples_key(model, problem, options)
            if not drawn or self.store.samples(skey):
                continue
            self.store.put_samples(skey, [self._sample_row(problem, i, c, r.usage.prompt_tokens if i == 0 else 0,
                                                           r.seconds * c.tokens / total_tokens) for i, c in enumerate(drawn)])

    def _sample_row(self, problem: Problem, idx: int, c: Candidate, prompt_tokens: int, seconds: float) -> dict[str, Any]:
        return {"idx": idx, "text": c.completion if c.completion is not None else c.text, "answer": c.answer, "key": c.key,
                "tokens": c.tokens, "finish": c.finish_reason, "confidence": c.confidence, "score": None,
                "correct": self.task.score(problem, c.text), "prompt_tokens": prompt_tokens, "seconds": seconds,
                "token_logprobs": c.token_logprobs}

    def rescore(self, problems: list[Problem]) -> tuple[int, int]:
        """Score this run's stored samples and strategy-run results again by the task's checker as it is today (after
        a fix to it), for the items of ``problems`` (an item whose stored reference differs from its problem's is
        left alone). The shared-sample rows still hold their old choice's score: derive them again afterwards
        (``rederive``). Returns (samples, results) changed."""
        by_item = {item_id(p): p for p in problems}
        refs = {r["item"]: r["reference"] for r in self.store.results(self.config.run)}

        def score(item: str, stored: dict[str, Any]) -> float | None:
            p = by_item.get(item)
            if p is None or (item in refs and refs[item] is not None and str(refs[item]) != str(p.answer)):
                return None
            if stored["params"] is not None and executes(json.loads(stored["params"]).get("prompt")):
                # a stored program keeps its text, not its run: it was scored by what it printed (its answer), as
                # with_execution wrote it; one that printed no answer was scored on its output, not kept: leave it
                if stored["answer"] is None:
                    return None
                return self.task.score(p, printed_line(stored["answer"]))
            return self.task.score(p, stored["text"])

        return self.store.rescore(self.config.run, score)

    def rederive(self, model: str, problems: list[Problem]) -> int:
        """Derive the stored results of the shared-sample strategies again from their stored samples and scores
        (after a change in how answers are read from text): nothing is generated or judged; rows whose samples or
        judgements are not all stored are left as they are. Returns how many rows were replaced."""
        replaced = 0
        for spec in self.config.strategies:
            info, base_params = parse_spec(spec)
            if info.evaluation != "shared_samples":
                continue
            name, params_json = self.result_params(spec)
            # the scorer only names its stored judgements (a judge's name carries the model it asks)
            scorer = _stored_scorer(info, self.config.scorer, model) if info.default_scorer is not None else None
            for problem in problems:
                key = Key(self.config.run, self.task.name, item_id(problem), model, name, params_json, self.config.seed)
                skey = self._samples_key(model, problem, base_params)
                rows = self.store.samples(skey)
                have = self.store.scores(skey, getattr(scorer, "name", "scorer")) if scorer is not None else {}
                for b in units(info, self.config.budgets):
                    if not self.store.has_result(key, b) or len(rows) < b:
                        continue
                    scores = None
                    if scorer is not None:
                        if any(r["idx"] not in have for r in rows[:b]):
                            continue
                        scores = [(have[r["idx"]][0], have[r["idx"]][1] or Usage()) for r in rows[:b]]
                    self.store.put_result(key, b, self._derive(info, problem, rows[:b], scores), replace=True)
                    replaced += 1
        return replaced

    def _sampling_lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault((key.item, key.model, key.params), asyncio.Lock())

    async def _scores(self, model, problem, info, base_params, rows, scorer) -> list[tuple[float | None, Usage]]:
        """The scorer's score of every shared sample and what judging it cost, computed once per scorer and stored
        (a sample whose stored score has no recorded cost is judged again, so that rows count every token)."""
        skey = self._samples_key(model, problem, base_params)
        name = getattr(scorer, "name", "scorer")
        have = self.store.scores(skey, name)
        missing = [r for r in rows if r["idx"] not in have or have[r["idx"]][1] is None]
        if missing:
            # the traces a live run would hand the scorer: each with the answer it votes for (a program's printed one)
            traces = [c.trace() for c in stored_candidates(missing)]
            started = time.perf_counter()
            with scorer_usage() as account:
                got = await scorer.score(problem, traces)
            wall = time.perf_counter() - started
            per = list(getattr(scorer, "last_usage", None) or [])
            if len(per) != len(missing):  # a scorer that does not say per trace: share its total out evenly
                total, n = account.usage, len(missing)
                per = [Usage(total.prompt_tokens // n + (i < total.prompt_tokens % n),
                             total.cached_prompt_tokens // n + (i < total.cached_prompt_tokens % n),
                             total.completion_tokens // n + (i < total.completion_tokens % n), 0.0, 0) for i in range(n)]
            per = share_seconds(per, wall)
            self.store.put_scores(skey, name, {r["idx"]: (s, u) for r, s, u in zip(missing, got, per, strict=True)})
            have = self.store.scores(skey, name)
        return [(have[r["idx"]][0], have[r["idx"]][1] or Usage()) for r in rows]

    def _derive(self, info: StrategyInfo, problem: Problem, rows, scores: list[tuple[float | None, Usage]] | None = None) -> dict[str, Any]:
        """The budget-k result of a sampling strategy from its first k stored samples (and, for the scored
        strategies, their scores: what judging those k samples cost is part of the row)."""
        cands = [replace(c, score=scores[i][0] if scores else None) for i, c in enumerate(stored_candidates(rows))]
        judged = Usage()
        for _, u in (scores or [])[: len(rows)]:
            judged = judged + u
        chosen = info.choose(cands)  # sample: its first draw; coverage over k draws is pass@k in the report
        correct = rows[chosen]["correct"] if chosen is not None else 0.0
        counts: dict[str, int] = {}
        for c in cands:
            if c.key is not None:
                counts[c.key] = counts.get(c.key, 0) + 1
        # what the explorer shows: which of the stored samples this row chose among, and how (the texts stay in samples)
        trace = {"strategy": info.name, "from_samples": {"model": rows[0]["model"], "strategy": rows[0]["strategy"],
                                                         "params": rows[0]["params"], "count": len(rows)} if rows else None,
                 "answer": cands[chosen].answer if chosen is not None else None, "chosen": chosen,
                 "votes": dict(sorted(counts.items(), key=lambda kv: -kv[1])), "question": problem.question,
                 "reference": problem.answer, "answers": [c.answer for c in cands], "keys": [c.key for c in cands],
                 "scores": [s for s, _ in scores[: len(rows)]] if scores else None}
        return {"trace": trace, "answer": cands[chosen].answer if chosen is not None else None, "reference": problem.answer,
                "correct": correct, "prompt_tokens": sum(r["prompt_tokens"] for r in rows) + judged.prompt_tokens,
                "cached_prompt_tokens": judged.cached_prompt_tokens,
                "completion_tokens": sum(r["tokens"] for r in rows) + judged.completion_tokens,
                "seconds": sum(r["seconds"] for r in rows) + judged.seconds,
                "n_candidates": len(rows), "n_correct": sum(1 for r in rows if r["correct"] > 0), "stopped_by": None}


class _OnFirstUse:
    """A generator opened when something first asks it for anything (to generate, its name, its hidden states), so
    that resuming a run with nothing left to do loads no model; closing one never opened does nothing."""

    def __init__(self, open_: Callable[[], Generator]):
        self._open, self._inner = open_, None

    def _get(self) -> Generator:
        if self._inner is None:
            self._inner = self._open()
        return self._inner

    def __getattr__(self, attr: str):
        return getattr(self._get(), attr)

    async def generate(self, requests):
        return await self._get().generate(requests)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def _stored_scorer(info: StrategyInfo, scorer: str | None, model: str):
    """The scorer whose stored judgements a re-derivation reads, for its name only: a probe's name is its weights'
    fingerprint, read from its file (building the scorer would need the embedded model's hidden states)."""
    from ponder.specs import split_spec

    name, args = split_spec(scorer, "scorer") if isinstance(scorer, str) else (None, {})
    if name == "probe" and args.get("path"):
        from ponder.verifier.probe import Probe

        return _Named(f"probe:{Probe.load(args['path']).fingerprint()}")
    return resolve_scorer(info, scorer, _NoGenerator(model))


@dataclass(frozen=True)
class _Named:
    name: str


class _NoGenerator:
    """Stands in for a generator where only a scorer's name is wanted (re-deriving stored rows asks nothing)."""

    def __init__(self, name: str = "none"):
        self.name = name

    async def generate(self, requests):
        raise RuntimeError("re-deriving stored results generates nothing")

    async def aclose(self) -> None:
        return None


def share_seconds(per: list[Usage], wall: float) -> list[Usage]:
    """The wall seconds of one scoring call shared out over its traces, by the prompt tokens each had evaluated
    (evenly where none say): a judgement's time, like a sample's, is its share of the call that made it.

    >>> [u.seconds for u in share_seconds([Usage(29, 0, 1), Usage(9, 0, 1)], 2.0)]
    [1.5, 0.5]
    """
    weights = [u.evaluated_prompt_tokens + u.completion_tokens for u in per]
    total = sum(weights)
    return [replace(u, seconds=wall * (w / total if total else 1 / len(per)), requests=max(u.requests, 1))
            for u, w in zip(per, weights, strict=True)]


async def evaluate(store: Store, task: Task, config: EvalConfig, open_generator: Callable[[str], Generator],
                   progress: Progress | None = None) -> Progress:
    """Run the whole grid; safe to call again on the same run (it continues where it stopped)."""
    store.start_run(config.run, config.as_dict())
    problems = list(task.problems(config.limit, config.seed))
    ev = Evaluator(store, task, config, progress)
    ev.progress.total = ev.plan_size(len(problems))
    escalates = any(parse_spec(s)[0].needs_models for s in config.strategies)
    for model in config.models:
        generator = _OnFirstUse(lambda m=model: open_generator(m))  # a finished run's resume loads no model
        if escalates:  # cascade: the model it escalates to is opened on first use, by the same opener
            from ponder.backends.router import ModelRouter

            generator = ModelRouter(generator, open_generator, default_name=model, owns_default=True)
        try:
            await ev.run_model(model, generator, problems)
        finally:
            await generator.aclose()
    return ev.progress
