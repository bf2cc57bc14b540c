"""Search over reasoning steps: beam search and DVTS guided by step scores, and Monte-Carlo tree search.

A step is the text up to the step delimiter (a blank line by default). Every expansion is one ``generate`` call
carrying one request per node being expanded, each asking for ``k`` continuations of that node's text as an
assistant ``prefix`` and stopping at the delimiter: the backend decodes them in one batch and, on the embedded
backend, reuses the KV of every node's prefix instead of evaluating it again.

With an executing prompt (``prompt=pal``) the search steps through a program, a block of code a step, and every
path that ends is run in the sandbox: it answers with what it printed (as ``program`` does), and the scorer judges
it with its output, so a verifier trained on executed programs (``scorer=probe``) guides the search over them.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ponder import observe
from ponder.accounting import scorer_usage, spent_so_far, with_scorer_usage
from ponder.protocols import Executor, Generator, Scorer
from ponder.scorers.base import aggregate
from ponder.strategies.base import Meter, SamplingOptions, chosen_logprobs, make_candidate, result, score_weights, vote
from ponder.strategies.execution import executes, run_programs, with_execution
from ponder.types import Budget, Candidate, Execution, GenerationRequest, Problem, Result, Trace, TreeNode


class StepOptions(SamplingOptions):
    """Tree search's step options. ``max_tokens`` bounds each whole path (every step and the final completion
    together), ``max_step_tokens`` each step; a path that spends its ``max_tokens`` ends there (finish ``length``)."""

    max_tokens: int = Field(512, ge=1, description="new tokens per path: its steps and its final completion together")
    step_delimiter: str = Field("\n\n", min_length=1, description="where one reasoning step ends")
    max_step_tokens: int = Field(160, ge=1, description="new tokens per step")
    max_depth: int = Field(8, ge=1, description="steps before the remaining text is completed in one go")
    aggregate: Literal["last", "min", "prod", "mean"] = Field("last", description="step scores -> one score")
    select: Literal["best", "weighted"] = Field("best", description="final pick: best score, or score-weighted vote")

    @field_validator("stop")
    @classmethod
    def _no_user_stop(cls, v):
        if v:
            raise ValueError("tree search ends each step at its step_delimiter; stop strings are not supported here")
        return v


@dataclass(eq=False)
class Node:
    """A partial (or complete) reasoning trace in the search tree."""

    text: str = ""  # everything generated on this path, delimiters included: the prefix of the next step
    steps: tuple[str, ...] = ()
    step_logprobs: tuple[tuple[float, ...], ...] = ()
    finish: str | None = None  # None while open; eos / length / deadline once terminal
    tokens: int = 0  # generated on this path
    score: float | None = None
    step_scores: tuple[float, ...] = ()
    parent: Node | None = field(default=None, repr=False)
    children: list[Node] = field(default_factory=list, repr=False)
    visits: int = 0
    value_sum: float = 0.0
    prior: float = 1.0
    id: int = 0  # the root is 0; the Stepper numbers the rest as it creates them
    step_tokens: int = 0  # generated for this node's own step
    cached_tokens: int | None = None  # prompt tokens the backend reused from cache for the request that made it
    pruned: bool = False  # a branch the search dropped
    executed: bool = False  # its program was run (an executing prompt): it answers with what it printed
    ran: Execution | None = None  # that run; None when its text had no program

    @property
    def depth(self) -> int:
        return len(self.steps)

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def trace(self) -> Trace:
        """What a scorer judges of this node: a finished path carries the answer it votes for (its candidate's key);
        an executed one is judged with its program's output, as its candidate reads."""
        done = self.finish == "eos"
        c = self.candidate()
        return Trace(c.text, self.steps, self.step_logprobs, done, c.key if done or self.executed else None)

    def candidate(self) -> Candidate:
        c = make_candidate(self.text, tokens=self.tokens, finish_reason=self.finish or "length", steps=self.steps,
                           token_logprobs=tuple(x for s in self.step_logprobs for x in s), step_logprobs=self.step_logprobs,
                           score=self.score, step_scores=self.step_scores)
        return with_execution(c, self.ran) if self.executed else c


class Stepper:
    """Expands nodes through the generator and scores them through the scorer, within the meter's budget."""

    def __init__(self, problem: Problem, generator: Generator, scorer: Scorer, meter: Meter, params: StepOptions,
                 executor: Executor | None = None):
        self.problem, self.generator, self.scorer, self.meter, self.p = problem, generator, scorer, meter, params
        self.prompt = params.prompt_for(problem)
        self.executes, self.executor = executes(params.prompt), executor
        self.expansions = 0
        self.nodes = 0
        self.root = Node()

    def prune(self, nodes: list[Node]) -> None:
        """Mark branches the search drops (they stay in the tree, greyed in the explorer)."""
        for n in nodes:
            n.pruned = True
        if nodes and observe.active():
            observe.emit("pruned", ids=[n.id for n in nodes])

    def backed_up(self, path: list[Node]) -> None:
        """Report the visit counts and values of a path after an MCTS backup."""
        if observe.active():
            observe.emit("visits", nodes=[[n.id, n.visits, round(n.q, 4)] for n in path])

    def tree(self, leaves: list[Node], chosen: int | None) -> tuple[TreeNode, ...]:
        """Every node reachable from the root (depth first, children in the order they were made), the chosen
        candidate's path marked and each complete trace linked to its candidate index."""
        index = {id(leaf): i for i, leaf in enumerate(leaves)}
        on_path: set[int] = set()
        node = leaves[chosen] if chosen is not None else None
        while node is not None:
            on_path.add(id(node))
            node = node.parent
        out: list[TreeNode] = []
        stack = [self.root]
        while stack:
            n = stack.pop()
            out.append(TreeNode(id=n.id, parent=n.parent.id if n.parent is not None else None,
                                step=n.steps[-1] if n.steps else "", depth=n.depth, tokens=n.step_tokens,
                                finish=n.finish, score=n.score, visits=n.visits if n.visits else None,
                                value=n.q if n.visits else None, cached_tokens=n.cached_tokens, pruned=n.pruned,
                                chosen=id(n) in on_path, candidate=index.get(id(n))))
            stack.extend(reversed(n.children))
        return tuple(out)

    def _max_tokens(self, n_sequences: int, per_sequence: int) -> int:
        left = self.meter.tokens_left()
        if left is None or left // max(1, n_sequences) >= per_sequence:
            return per_sequence
        self.meter.shortened = True
        return max(1, left // max(1, n_sequences))

    async def expand(self, nodes: list[Node], k: int | list[int], *, final: bool = False) -> list[list[Node]]:
        """``k`` children for each node (a step each; with ``final``, the whole rest of the answer)."""
        ks = k if isinstance(k, list) else [k] * len(nodes)
        # trim the widest requests first so the expansion fits the sample budget, and the token budget at one
        # token per child at least
        for axis, left in (("max_samples", self.meter.samples_left()), ("max_tokens", self.meter.tokens_left())):
            if left is not None and sum(ks) > left:
                self.meter.limited = axis
                while sum(ks) > left and max(ks) > 0:
                    ks[ks.index(max(ks))] -= 1
        pairs = [(node, kk) for node, kk in zip(nodes, ks, strict=True) if kk > 0]
        if not pairs:
            return [[] for _ in nodes]
        # max_tokens bounds the whole path (its steps and its final completion), max_step_tokens each step
        per = self.p.max_tokens if final else self.p.max_step_tokens
        max_tokens = self._max_tokens(sum(kk for _, kk in pairs), per)
        stop = () if final else (self.p.step_delimiter,)
        seed = None if self.p.seed is None else self.p.seed + 1000 * self.expansions
        self.expansions += 1
        requests = [GenerationRequest(self.prompt, n=kk, prefix=node.text, deadline=self.meter.deadline, params=self.p.sampling(
                        max_tokens=max(1, min(max_tokens, self.p.max_tokens - node.tokens)), stop=stop, logprobs=0, seed=seed))
                    for node, kk in pairs]
        completions = await self.generator.generate(requests)
        self.meter.add(completions)
        out: dict[int, list[Node]] = {}
        for (node, _), completion in zip(pairs, completions, strict=True):
            kids = []
            for s in completion.samples:
                lps = chosen_logprobs(s) or ()
                ended_step = s.finish_reason == "stop" and not final
                text = node.text + s.text + (self.p.step_delimiter if ended_step else "")
                finish = None if (ended_step or (s.finish_reason == "length" and not final)) else s.finish_reason
                tokens = node.tokens + s.n_tokens
                if finish is None and tokens >= self.p.max_tokens:
                    finish = "length"  # the path's own budget is spent: it ends here, as a cut-off path
                self.nodes += 1
                child = Node(text=text, steps=node.steps + (s.text,), step_logprobs=node.step_logprobs + (lps,),
                             finish=finish, tokens=tokens, parent=node, id=self.nodes, step_tokens=s.n_tokens,
                             cached_tokens=completion.usage.cached_prompt_tokens)
                kids.append(child)
            node.children.extend(kids)
            out[id(node)] = kids
            if observe.active():
                for kid in kids:
                    observe.emit("node", id=kid.id, parent=node.id, step=kid.steps[-1], depth=kid.depth,
                                 tokens=kid.step_tokens, finish=kid.finish, cached_tokens=kid.cached_tokens)
        await self.execute([kid for kids in out.values() for kid in kids if kid.finish])
        return [out.get(id(node), []) for node in nodes]

    async def execute(self, nodes: list[Node]) -> None:
        """Under an executing prompt, run the programs of ``nodes`` not yet run (one call to the executor)."""
        todo = [n for n in nodes if self.executes and not n.executed]
        if not todo:
            return
        for node, ran in zip(todo, await run_programs([n.text for n in todo], self.meter, self.executor), strict=True):
            node.executed, node.ran = True, ran

    async def score(self, nodes: list[Node]) -> None:
        """Set each node's step scores and aggregate score (0 where the scorer abstains)."""
        if not nodes:
            return
        scores = await self.scorer.score_steps(self.problem, [n.trace() for n in nodes])
        for node, s in zip(nodes, scores, strict=True):
            node.step_scores = tuple(s) if s else ()
            agg = aggregate(node.step_scores, self.p.aggregate)
            node.score = agg if agg is not None else 0.0
        if observe.active():
            observe.emit("scores", nodes=[[n.id, n.score] for n in nodes])

    async def pick(self, leaves: list[Node]) -> tuple[list[Candidate], int | None, tuple[tuple[str, float], ...]]:
        """The candidates of ``leaves`` and the chosen one; under an executing prompt a partial path the budget left
        unfinished is run too, as sampling strategies run a cut-off program."""
        await self.execute(leaves)
        candidates = [leaf.candidate() for leaf in leaves]
        if not candidates:
            return [], None, ()
        if self.p.select == "weighted":
            v = vote(candidates, score_weights(candidates))
            return candidates, v.chosen, v.votes
        chosen = max(range(len(candidates)), key=lambda i: ((candidates[i].score or 0.0), candidates[i].key is not None, -i))
        return candidates, chosen, ()


def _width_multiple_of(params, field_name: str):
    other = getattr(params, field_name)
    if params.width % other:
        raise ValueError(f"width ({params.width}) must be a multiple of {field_name} ({other})")
    return params


# -- beam search ----------------------------------------------------------------------------------------------


class BeamParams(StepOptions):
    width: int = Field(4, ge=1, le=64, description="partial traces generated per step")
    keep: int = Field(2, ge=1, le=64, description="best partial traces kept per step; each gets width/keep children")
    distinct: bool = Field(True, description="keep only distinct partial traces: a copy of a kept one is dropped and "
                                             "the kept ones share its children (low-entropy text such as code repeats)")

    _divides = model_validator(mode="after")(lambda self: _width_multiple_of(self, "keep"))


def best_distinct(nodes: list[Node], k: int) -> list[Node]:
    """The ``k`` best-scored nodes whose texts differ (a copy of a better node is passed over), best first.

    >>> [n.text for n in best_distinct([Node("a", score=0.9), Node("a", score=0.9), Node("b", score=0.5), Node("c", score=0.7)], 2)]
    ['a', 'c']
    """
    out, seen = [], set()
    for n in sorted(nodes, key=lambda n: -(n.score or 0.0)):
        if n.text not in seen:
            seen.add(n.text)
            out.append(n)
            if len(out) == k:
                break
    return out


def shares(width: int, kept: int) -> list[int]:
    """``width`` children split over ``kept`` nodes as evenly as it goes, the better nodes taking the remainder.

    >>> shares(8, 4), shares(8, 3), shares(4, 1)
    ([2, 2, 2, 2], [3, 3, 2], [4])
    """
    return [width // kept + (1 if i < width % kept else 0) for i in range(kept)]


async def beam(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget, params: BeamParams,
               *, executor: Executor | None = None) -> Result:
    """Step-level beam search guided by a process reward model (Snell et al. 2024, arXiv:2408.03314; Yao et al.
    2023; HuggingFace search-and-learn): sample ``width`` first steps; at every depth score the open traces, keep
    the ``keep`` best and give each ``width / keep`` continuations; traces that end are set aside. Copies of a kept
    trace are not kept again (``distinct``): the width goes to the distinct ones, as search-and-learn's
    ``filter_duplicates`` does. At
    ``max_depth`` (or when the budget runs low) the kept traces are completed in one go. The answer is the
    best-scored complete trace (or the score-weighted vote with ``select=weighted``)."""
    meter = Meter(budget)
    st = Stepper(problem, generator, scorer, meter, params, executor)
    finished: list[Node] = []
    [frontier] = await st.expand([st.root], params.width)
    kept_per_depth: list[int] = []
    stopped = None
    while True:
        await st.score(frontier)
        finished += [n for n in frontier if n.finish]
        open_nodes = [n for n in frontier if not n.finish]
        if not open_nodes:
            break
        kept = best_distinct(open_nodes, params.keep) if params.distinct else sorted(open_nodes, key=lambda n: -(n.score or 0.0))[: params.keep]
        st.prune([n for n in open_nodes if n not in kept])
        kept_per_depth.append(len(kept))
        stopped = meter.exhausted()
        if kept[0].depth >= params.max_depth or stopped:
            if stopped != "max_samples" and stopped != "max_seconds":
                done = await st.expand(kept, 1, final=True)
                last = [c for kids in done for c in kids]
                await st.score(last)
                # a kept trace the budget left no room to complete is still the best found on its path
                finished += last + [n for n, kids in zip(kept, done, strict=True) if not kids]
            else:
                finished += kept
            break
        frontier = [c for kids in await st.expand(kept, shares(params.width, len(kept))) for c in kids]
        if not frontier:
            finished += kept
            break
    candidates, chosen, votes = await st.pick(finished)
    return result("beam", params, meter, candidates, chosen=chosen, votes=votes, scorer=scorer, stopped_by=stopped,
                  extra={"expansions": st.expansions, "nodes": st.nodes, "kept_per_depth": kept_per_depth},
                  tree=st.tree(finished, chosen))


# -- diverse verifier tree search ------------------------------------------------------------------------------


class DVTSParams(StepOptions):
    width: int = Field(4, ge=1, le=64, description="partial traces generated per step, over all subtrees")
    expand: int = Field(2, ge=1, le=64, description="children per subtree per step; width/expand subtrees")

    _divides = model_validator(mode="after")(lambda self: _width_multiple_of(self, "expand"))


async def dvts(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget, params: DVTSParams,
               *, executor: Executor | None = None) -> Result:
    """Diverse verifier tree search (Beeching et al. 2024, HuggingFace "Scaling test-time compute"): split the
    width into ``width / expand`` independent subtrees, each starting from its own first step; every step, each
    subtree expands ``expand`` children of its current node and greedily keeps the best-scored one. Subtrees
    never compete with each other, which keeps the final candidates diverse."""
    meter = Meter(budget)
    st = Stepper(problem, generator, scorer, meter, params, executor)
    n_sub = params.width // params.expand
    [heads] = await st.expand([st.root], n_sub)
    await st.score(heads)
    leaves: list[Node] = [h for h in heads if h.finish]
    active = [h for h in heads if not h.finish]
    stopped = None
    while active:
        stopped = meter.exhausted()
        if active[0].depth >= params.max_depth or stopped:
            if stopped not in ("max_samples", "max_seconds"):
                groups = await st.expand(active, 1, final=True)
                done = [c for kids in groups for c in kids]
                await st.score(done)
                leaves += done + [n for n, kids in zip(active, groups, strict=True) if not kids]
            else:
                leaves += active
            break
        groups = await st.expand(active, params.expand)
        await st.score([c for g in groups for c in g])
        nxt = []
        for node, kids in zip(active, groups, strict=True):
            if not kids:
                leaves.append(node)
                continue
            best = max(kids, key=lambda n: n.score or 0.0)
            st.prune([k for k in kids if k is not best])
            (leaves if best.finish else nxt).append(best)
        active = nxt
    candidates, chosen, votes = await st.pick(leaves)
    return result("dvts", params, meter, candidates, chosen=chosen, votes=votes, scorer=scorer, stopped_by=stopped,
                  extra={"subtrees": n_sub, "expansions": st.expansions, "nodes": st.nodes}, tree=st.tree(leaves, chosen))


# -- Monte-Carlo tree search -----------------------------------------------------------------------------------


class MCTSParams(StepOptions):
    iterations: int = Field(32, ge=1, description="selection-expansion-evaluation-backup rounds")
    expand: int = Field(2, ge=1, le=32, description="children sampled when a leaf is expanded")
    exploration: float = Field(1.4, ge=0, description="c in UCT / PUCT")
    selection: Literal["uct", "puct"] = "uct"
    rollout: bool = Field(False, description="value a new node by completing it and scoring the outcome, "
                                             "instead of by its step score")


def uct(child: Node, parent_visits: int, c: float, puct: bool) -> float:
    """UCT: Q + c sqrt(ln N / n) (Kocsis & Szepesvári 2006), unvisited first; PUCT: Q + c P sqrt(N) / (1 + n)."""
    if puct:
        return child.q + c * child.prior * math.sqrt(max(1, parent_visits)) / (1 + child.visits)
    if child.visits == 0:
        return math.inf
    return child.q + c * math.sqrt(math.log(max(1, parent_visits)) / child.visits)


def select_leaf(root: Node, c: float, puct: bool) -> list[Node]:
    """The path from the root to the node to expand next, following the highest UCT/PUCT score."""
    path = [root]
    node = root
    while node.children and not node.finish:
        node = max(node.children, key=lambda ch: (uct(ch, node.visits, c, puct), -node.children.index(ch)))
        path.append(node)
    return path


def backup(path: list[Node], value: float) -> None:
    for node in path:
        node.visits += 1
        node.value_sum += value


async def mcts(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget, params: MCTSParams,
               *, executor: Executor | None = None) -> Result:
    """Monte-Carlo tree search over reasoning steps (as in rStar, Qi et al. 2024, and ReST-MCTS*, Zhang et al.
    2024): each iteration selects a leaf by UCT (or PUCT with the step's probability as prior), expands it with
    ``expand`` sampled next steps, values each new node by its step score (or, with ``rollout``, by completing it
    and scoring the outcome), and backs the values up the path. Complete traces found on the way are the
    candidates; the answer is the best-valued one (or the score-weighted vote with ``select=weighted``)."""
    final, _ = await _mcts(problem, generator, scorer, budget, params, (), executor)
    return final


async def mcts_snapshots(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget, params: MCTSParams,
                         at: Collection[int], *, executor: Executor | None = None) -> dict[int, Result]:
    """One search of ``params.iterations`` iterations that also answers as if it had been asked for fewer: the
    Result of ``mcts`` with ``iterations=i`` for every ``i`` in ``at`` (and ``params.iterations``), each with the
    usage and time spent up to that point, scorer requests included.

    MCTS is an anytime algorithm: nothing an iteration does depends on how many follow, so the search after ``i``
    iterations is the ``i``-iteration search, and an accuracy-versus-iterations curve costs one run of its largest
    point (as the evaluator's sampling curves cost one draw of the largest budget). Answering early may need a
    completion (no trace finished yet): it is made on a copy of the search (its own meter, expansion counter and
    scorer account; the new nodes taken out of the tree again), and its time is taken off the clock, so the
    search goes on exactly as if no one had asked."""
    with scorer_usage() as account:
        final, snaps = await _mcts(problem, generator, scorer, budget, params, at, executor)
    return {**snaps, params.iterations: with_scorer_usage(final, account.usage)}


async def _mcts(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget, params: MCTSParams,
                at: Collection[int], executor: Executor | None = None) -> tuple[Result, dict[int, Result]]:
    """The search, and the answers it would have given after each of ``at`` iterations (see ``mcts_snapshots``;
    those include the scorer spending so far, the final Result leaves it to the registry's wrapper)."""
    meter = Meter(budget)
    st = Stepper(problem, generator, scorer, meter, params, executor)
    root = st.root
    terminals: list[Node] = []
    puct = params.selection == "puct"
    iterations = 0
    stopped = None
    snaps: dict[int, Result] = {}
    wanted = sorted(i for i in set(at) if 0 < i < params.iterations)
    for _ in range(params.iterations):
        stopped = meter.exhausted()
        if stopped:
            break
        path = select_leaf(root, params.exploration, puct)
        leaf = path[-1]
        if leaf.finish:  # a terminal was selected again: back up its value once more
            backup(path, leaf.score or 0.0)
            st.backed_up(path)
            iterations += 1
        else:
            final = leaf.depth >= params.max_depth
            [kids] = await st.expand([leaf], params.expand, final=final)
            if not kids:
                break
            for kid in kids:
                lps = kid.step_logprobs[-1] if kid.step_logprobs else ()
                kid.prior = math.exp(sum(lps) / len(lps)) if lps else 1.0
            await st.score(kids)
            values = [k.score or 0.0 for k in kids]
            if params.rollout:
                open_kids = [k for k in kids if not k.finish]
                rolled = [r for rs in await st.expand(open_kids, 1, final=True) for r in rs] if open_kids else []
                if rolled:
                    outcome = await scorer.score(problem, [r.trace() for r in rolled])
                    for r, v in zip(rolled, outcome, strict=True):
                        r.parent.children.remove(r)  # a rollout values its node; it is not part of the tree
                        r.score = v if v is not None else 0.0
                        terminals.append(r)
                        values[kids.index(r.parent)] = r.score
                    if observe.active():
                        observe.emit("removed", ids=[r.id for r in rolled])
            for kid, v in zip(kids, values, strict=True):
                backup(path + [kid], v)
                if kid.finish:
                    terminals.append(kid)
            st.backed_up(path + kids)
            iterations += 1
        if iterations in wanted:
            snaps[iterations] = await _mcts_answer(st, root, terminals, stopped, iterations, snapshot=True)
    result_ = await _mcts_answer(st, root, terminals, stopped, iterations, snapshot=False)
    for i in wanted:  # the search ended before i iterations: a search asked for i ends the same way
        if i not in snaps:
            snaps[i] = with_scorer_usage(replace(result_, params=_with_iterations(result_.params, i)), spent_so_far())
    return result_, snaps


def _with_iterations(params: tuple, i: int) -> tuple:
    return tuple((k, i if k == "iterations" else v) for k, v in params)


async def _mcts_answer(st: Stepper, root: Node, terminals: list[Node], stopped: str | None, iterations: int, *,
                       snapshot: bool) -> Result:
    """The search's answer now: the best of the complete traces, or, when none has finished, the most visited path
    completed (or, past the budget, the best partial trace). With ``snapshot`` the search goes on afterwards, so
    the completion is made on a copy (see ``mcts_snapshots``) and the Result carries the scorer spending so far."""
    terminals = list(terminals)
    started = time.monotonic()
    main = st
    if snapshot:
        st = copy.copy(main)
        st.meter = replace(main.meter)
    with scorer_usage() if snapshot else nullcontext() as own:
        if not terminals:  # nothing finished within the budget: complete the most visited path
            node = root
            while node.children:
                node = max(node.children, key=lambda ch: (ch.visits, ch.q))
            if node is not root and stopped not in ("max_seconds", "max_samples"):
                before = len(node.children)
                done = [c for kids in await st.expand([node], 1, final=True) for c in kids]
                await st.score(done)
                terminals += done
                if snapshot:
                    del node.children[before:]
            if not terminals and node is not root:
                terminals = [node]  # the budget is spent: the best partial trace is the answer so far
    candidates, chosen, votes = await st.pick(terminals)
    p = st.p.model_copy(update={"iterations": iterations}) if snapshot else st.p
    r = result("mcts", p, st.meter, candidates, chosen=chosen, votes=votes, scorer=st.scorer, stopped_by=stopped,
               extra={"iterations": iterations, "expansions": st.expansions, "nodes": st.nodes,
                      "root_visits": root.visits}, tree=st.tree(terminals, chosen))
    if snapshot:
        r = with_scorer_usage(r, spent_so_far() + own.usage)
        main.meter.started += time.monotonic() - started  # the search's clock does not count the copy's work
    return r
