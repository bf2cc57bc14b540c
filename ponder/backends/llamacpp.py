"""The embedded backend: llama.cpp in-process, with batched multi-sequence decoding and prefix KV reuse.

One engine thread owns one llama.cpp context (unified KV cache, ``n_slots`` sequence ids) and runs a
continuous-batching loop. Each step builds one ``llama_batch`` holding the next token of every sequence being
decoded plus chunks of prompts being prefilled, calls ``llama_decode`` once, and samples every sequence from its
own sampler chain (seeded). For a request with ``n`` samples the prompt is evaluated once and its KV shared with
``n - 1`` more sequences by ``llama_memory_seq_cp``; a prompt that starts with tokens already in the cache (an
earlier request's prompt, a partial reasoning trace being continued) copies them instead of evaluating them.
Requests submitted from any thread join the running batch at the next step, so concurrent callers share decode
steps instead of queueing behind each other.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import concurrent.futures
import itertools
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
import numpy as np

from ponder.backends.hidden_states import HiddenStates
from ponder.backends.kv_slots import SlotTable
from ponder.backends.llama_model import LlamaModel
from ponder.errors import BackendError, ContextOverflow, InvalidRequest
from ponder.types import Completion, GenerationRequest, Prompt, Sample, TokenLogprob, Usage

log = logging.getLogger(__name__)


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class EngineConfig:
    """Sizing of the embedded engine.

    ``n_ctx`` is the number of KV cells shared by all sequences (unified cache); ``n_slots`` how many sequences
    (being decoded or kept as prefix cache) exist at once; ``n_batch`` the most tokens one ``llama_decode`` takes.
    """

    n_ctx: int = 16384
    n_slots: int = 64
    n_batch: int = 2048
    n_threads: int = field(default_factory=default_threads)
    flash_attn: bool = True  # on CPU too: a few percent faster when many sequences share the unified cache
    n_gpu_layers: int = 0  # layers offloaded to a GPU (-1: all); a CPU-only build runs them on the CPU and says so

    def __post_init__(self) -> None:
        if not 1 <= self.n_slots <= 256:
            raise InvalidRequest(f"n_slots must be in [1, 256], got {self.n_slots}")
        if self.n_ctx < 256:
            raise InvalidRequest(f"n_ctx must be >= 256, got {self.n_ctx}")
        if self.n_batch < self.n_slots:
            raise InvalidRequest(f"n_batch ({self.n_batch}) must be >= n_slots ({self.n_slots})")


@dataclass
class EngineStats:
    """Counters since the engine started; read them to see what work was really done."""

    requests: int = 0
    requests_cancelled: int = 0
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    prompt_tokens_reused: int = 0
    completion_tokens: int = 0
    decode_calls: int = 0
    active_sequences: int = 0
    queued_requests: int = 0


class _Seq:
    """One sample being decoded."""

    def __init__(self, req: _Req, index: int, slot: int, sampler, pos: int):
        self.req, self.index, self.slot, self.sampler, self.pos = req, index, slot, sampler, pos
        self.generated: list[int] = []
        self.text = ""
        self.emitted = 0  # characters of text handed to the request's on_text
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.logprobs: list[TokenLogprob] | None = [] if req.request.params.logprobs is not None else None
        self.next_token: int | None = None
        self.finish: str | None = None
        self.window: collections.deque[float] | None = None
        if req.request.params.confidence_stop is not None:
            self.window = collections.deque(maxlen=int(req.request.params.confidence_stop[0]))


class _Req:
    def __init__(self, request: GenerationRequest, handle: RequestHandle):
        self.request, self.handle = request, handle
        self.t0 = time.perf_counter()
        self.tokens: list[int] = []
        self.cached = 0
        self.next_prompt = 0  # index in tokens of the next prompt token to evaluate
        self.slots: list[int] = []
        self.seqs: list[_Seq] = []
        self.samples: list[Sample | None] = [None] * request.n
        self.admitted_at = 0
        self.read = False  # a state read (:meth:`LlamaEngine.submit_read`): prefilled, no samples

    @property
    def prefill_end(self) -> int:
        """Where prefilling in the ordinary batch stops: a read's last token is evaluated apart, with embeddings on."""
        return len(self.tokens) - 1 if self.read else len(self.tokens)

    @property
    def prefilling(self) -> bool:
        return bool(self.slots) and not self.seqs


@dataclass(frozen=True)
class StateRead:
    """What a read (:meth:`LlamaEngine.submit_read`) resolves to."""

    state: np.ndarray  # the final hidden state after the last token
    tokens: int  # tokens the sequence holds
    reused: int  # of those, tokens taken from the cache (not evaluated for this read)


class RequestHandle:
    """What :meth:`LlamaEngine.submit` returns: a future Completion, and a way to stop decoding it."""

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[Completion] = concurrent.futures.Future()
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop decoding this request at the next step (its slots are released; the future is cancelled)."""
        self.cancelled.set()


class LlamaEngine:
    def __init__(self, model_path: Path | str, config: EngineConfig | None = None, lora: Path | None = None):
        self.config = config or EngineConfig()
        self.model = LlamaModel(model_path, n_gpu_layers=self.config.n_gpu_layers, lora=lora)
        cfg = self.config
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = cfg.n_ctx
        cp.n_batch = cfg.n_batch
        cp.n_ubatch = min(512, cfg.n_batch)
        cp.n_seq_max = cfg.n_slots
        cp.n_threads = cp.n_threads_batch = cfg.n_threads
        cp.kv_unified = True
        cp.flash_attn_type = 1 if cfg.flash_attn else 0
        cp.no_perf = True
        ctx = llama_cpp.llama_init_from_model(self.model.ptr, cp)
        if not ctx:
            self.model.close()
            raise BackendError(f"llama.cpp could not create a context (n_ctx={cfg.n_ctx}, n_slots={cfg.n_slots})")
        self.ctx = ctx
        self.model.apply_adapter(ctx)
        self.mem = llama_cpp.llama_get_memory(ctx)
        self.ctx_limit = min(self.model.n_ctx_train, cfg.n_ctx)
        self.batch = llama_cpp.llama_batch_init(cfg.n_batch, 0, 1)
        self.slots = SlotTable(cfg.n_slots)
        self.stats = EngineStats()
        eog = sorted(self.model.eog_ids)
        self._eog_bias = (llama_cpp.llama_logit_bias * len(eog))(*[llama_cpp.llama_logit_bias(t, float("-inf")) for t in eog])
        self._inbox: queue.SimpleQueue[_Req | None] = queue.SimpleQueue()
        self._pending: list[_Req] = []
        self._active: list[_Req] = []
        self._admissions = itertools.count()
        self._seed_rng = random.Random()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ponder-llamacpp", daemon=True)
        self._thread.start()

    # -- public ----------------------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> RequestHandle:
        if self._closed:
            raise BackendError("the llama.cpp engine is closed")
        if request.n > self.config.n_slots:
            raise InvalidRequest(f"n={request.n} exceeds this engine's n_slots={self.config.n_slots}")
        handle = RequestHandle()
        self._inbox.put(_Req(request, handle))
        return handle

    def submit_read(self, tokens: Sequence[int]) -> RequestHandle:
        """Read the final hidden state after the last of ``tokens`` (the model's last-layer output, normed: what
        llama.cpp's embeddings output holds), as a prompt would be read: the longest prefix the cache holds is
        reused (a path just generated is still in its slot, so reading it with a few tokens appended evaluates only
        those), the rest is evaluated in the running batch, and the last token in a step of its own with embeddings
        on. The future resolves to a :class:`StateRead`. Sequences longer than the context keep their end."""
        if self._closed:
            raise BackendError("the llama.cpp engine is closed")
        tokens = list(tokens)[-(self.ctx_limit - 1):]
        if not tokens:
            raise InvalidRequest("nothing to read: the sequence is empty")
        handle = RequestHandle()
        req = _Req(GenerationRequest(prompt=Prompt(text=""), n=1), handle)
        req.tokens, req.read = tokens, True
        self._inbox.put(req)
        return handle

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._inbox.put(None)
        self._thread.join()
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        self.model.close()

    # -- loop ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            idle = not self._active and not self._pending
            try:
                item = self._inbox.get() if idle else self._inbox.get_nowait()
                while True:
                    if item is None:
                        return self._shutdown()
                    self._pending.append(item)
                    item = self._inbox.get_nowait()
            except queue.Empty:
                pass
            try:
                self._step()
            except Exception as exc:  # never let the engine thread die silently
                for req in self._active + self._pending:
                    self._fail(req, BackendError(f"llama.cpp engine error: {exc!r}"))
                self._active, self._pending = [], []

    def _shutdown(self) -> None:
        for req in self._active + self._pending:
            self._fail(req, BackendError("the llama.cpp engine was closed"))

    def _step(self) -> None:
        self._expire()
        self._admit()
        self.stats.queued_requests = len(self._pending)
        self.stats.active_sequences = sum(1 for r in self._active for s in r.seqs if s.finish is None)
        while True:
            entries = self._plan_batch()
            if not entries:
                break
            rc = self._decode(entries)
            if rc == 0:
                self._after_decode(entries)
                break
            self._room_or_fail(rc)  # then plan again
        self._read_states()

    def _room_or_fail(self, rc: int) -> None:
        """After a decode that found no room (rc 1): evict a cached entry, else fail the newest request."""
        if rc == 1 and self._make_room():
            return
        victim = max(self._active, key=lambda r: r.admitted_at)
        self._fail(victim, ContextOverflow(
            f"the KV cache ({self.config.n_ctx} cells) is full: this request does not fit beside the others; "
            "ask for fewer samples or tokens, or start the engine with a larger n_ctx"))

    def _read_states(self) -> None:
        """The last token of every read whose other tokens are in the cache, in one decode with embeddings on (in
        embeddings mode llama.cpp outputs every row of a batch: only these rows are in it)."""
        while True:
            ready = [r for r in self._active if r.read and r.slots and r.next_prompt == r.prefill_end]
            if not ready:
                return
            rows = [(r.tokens[-1], len(r.tokens) - 1, r.slots[0], True, r) for r in ready]
            llama_cpp.llama_set_embeddings(self.ctx, True)
            try:
                rc = self._decode(rows)
                if rc == 0:
                    states = [np.ctypeslib.as_array(llama_cpp.llama_get_embeddings_ith(self.ctx, i), shape=(self.model.n_embd,)).copy()
                              for i in range(len(rows))]
            finally:
                llama_cpp.llama_set_embeddings(self.ctx, False)
            if rc != 0:
                self._room_or_fail(rc)
                continue
            for r, state in zip(ready, states, strict=True):
                self.stats.prompt_tokens_evaluated += 1
                self.slots.mark_evaluated(r.slots[0], len(r.tokens))
                self.slots.release(r.slots[0])
                self._active.remove(r)
                if not r.handle.future.done():
                    r.handle.future.set_result(StateRead(state, len(r.tokens), r.cached))
            return

    # -- admission -------------------------------------------------------------------------------------

    def _expire(self) -> None:
        now = time.monotonic()
        for req in list(self._pending) + list(self._active):
            if req.handle.cancelled.is_set():
                self.stats.requests_cancelled += 1
                self._drop(req)
                req.handle.future.cancel()
            elif req.request.deadline is not None and now >= req.request.deadline:
                self._finish_all(req, "deadline")

    def _admit(self) -> None:
        """Admit pending requests in order; once one waits for free slots, the later ones wait behind it."""
        waiting = []
        for req in list(self._pending):
            outcome = "no_slots" if waiting and waiting[-1][1] == "no_slots" else self._try_admit(req)
            if outcome != "admitted":
                waiting.append((req, outcome))
        self._pending = [req for req, _ in waiting]

    def _try_admit(self, req: _Req) -> str:
        """'admitted' (or failed, which also leaves the queue), 'no_slots', or 'wait_prefix'."""
        if not req.tokens:
            try:
                req.tokens = self.model.encode_prompt(req.request.prompt, req.request.prefix)
            except Exception as exc:
                self._fail(req, exc if isinstance(exc, InvalidRequest) else InvalidRequest(f"cannot encode the prompt: {exc}"))
                return "admitted"
            if not req.tokens:
                self._fail(req, InvalidRequest("the prompt is empty"))
                return "admitted"
            if len(req.tokens) >= self.ctx_limit:
                self._fail(req, ContextOverflow(
                    f"the prompt is {len(req.tokens)} tokens; this model's context holds {self.ctx_limit}"))
                return "admitted"
        if self.slots.n_available() < req.request.n:
            return "no_slots"
        match = self.slots.best_prefix(req.tokens)
        if match.pending:
            return "wait_prefix"  # its best prefix is being evaluated right now: copy it next step, not recompute it
        source = self.slots.slots[match.slot] if match.slot is not None and match.length > 0 else None
        slots = []
        # a read that extends a finished sequence (a path just generated) takes its slot over: the cache entry grows,
        # and no other entry (the path's siblings, still to be read) is evicted to make room for a copy
        extends = req.read and source is not None and match.length >= len(source.tokens)
        if source is not None and source.state == "cached" and (extends or self.slots.n_available() - 1 < req.request.n):
            # take the finished sequence's slot over and drop what follows the prefix
            self.slots.take(source.id, match.length)
            llama_cpp.llama_memory_seq_rm(self.mem, source.id, match.length, -1)
            slots.append(source.id)
        while len(slots) < req.request.n:
            slot = self.slots.acquire(protect=frozenset([source.id]) if source is not None else frozenset())
            assert slot is not None, "n_available() promised enough slots"
            llama_cpp.llama_memory_seq_rm(self.mem, slot, -1, -1)
            slots.append(slot)
        s0 = slots[0]
        if source is not None and source.id != s0:
            # share the prefix's cells (of a cached entry, kept for later, or of a running sequence) with ours
            llama_cpp.llama_memory_seq_cp(self.mem, source.id, s0, 0, match.length)
        req.cached = match.length
        req.next_prompt = match.length
        req.slots = slots
        req.admitted_at = next(self._admissions)
        self.slots.assign(s0, req.tokens)
        self.slots.mark_evaluated(s0, match.length)
        self.stats.requests += 1
        self.stats.prompt_tokens += len(req.tokens)
        self.stats.prompt_tokens_reused += match.length
        self._active.append(req)
        return "admitted"

    # -- one decode step -------------------------------------------------------------------------------

    def _plan_batch(self) -> list[tuple[int, int, int, bool, object]]:
        """(token, position, slot, wants_logits, owner) rows: decoding sequences first, then prompt chunks."""
        rows: list[tuple[int, int, int, bool, object]] = []
        for req in self._active:
            for seq in req.seqs:
                if seq.finish is None and seq.next_token is not None:
                    rows.append((seq.next_token, seq.pos, seq.slot, True, seq))
        room = self.config.n_batch - len(rows)
        for req in self._active:
            if not req.prefilling or room <= 0:
                continue
            start = req.next_prompt
            end = min(req.prefill_end, start + room)
            for i in range(start, end):
                last = i == len(req.tokens) - 1
                rows.append((req.tokens[i], i, req.slots[0], last, req))
            room -= end - start
        return rows

    def _decode(self, rows) -> int:
        b = self.batch
        for i, (tok, pos, slot, logits, _) in enumerate(rows):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = slot
            b.logits[i] = logits
        b.n_tokens = len(rows)
        self.stats.decode_calls += 1
        rc = llama_cpp.llama_decode(self.ctx, b)
        if rc < 0 or rc > 1:
            raise BackendError(f"llama_decode failed with code {rc}")
        return rc

    def _make_room(self) -> bool:
        slot = self.slots.evict_lru()
        if slot is None:
            return False
        llama_cpp.llama_memory_seq_rm(self.mem, slot, -1, -1)
        return True

    def _after_decode(self, rows) -> None:
        prompt_done: dict[int, tuple[_Req, int]] = {}
        evaluated: dict[int, int] = {}
        for i, (_, pos, slot, logits, owner) in enumerate(rows):
            evaluated[slot] = pos + 1
            if isinstance(owner, _Req):
                self.stats.prompt_tokens_evaluated += 1
                owner.next_prompt = pos + 1
                if logits:
                    prompt_done[id(owner)] = (owner, i)
        for slot, n in evaluated.items():
            self.slots.mark_evaluated(slot, n)
        for i, (_, pos, _, _, owner) in enumerate(rows):
            if isinstance(owner, _Seq) and owner.finish is None:
                owner.pos = pos + 1
                owner.next_token = None
                self._sample(owner, i)
        for req, i in prompt_done.values():
            self._fork(req, i)
        for req in [r for r in self._active if r.seqs and all(s.finish for s in r.seqs)]:
            self._complete(req)

    def _fork(self, req: _Req, logits_index: int) -> None:
        """The prompt is in slot 0's KV: share it with the other n - 1 slots and sample every first token."""
        n_prompt = len(req.tokens)
        s0 = req.slots[0]
        for slot in req.slots[1:]:
            llama_cpp.llama_memory_seq_cp(self.mem, s0, slot, -1, -1)
            self.slots.assign(slot, req.tokens)
            self.slots.mark_evaluated(slot, n_prompt)
        params = req.request.params
        base_seed = params.seed if params.seed is not None else self._seed_rng.getrandbits(32)
        for k, slot in enumerate(req.slots):
            seq = _Seq(req, k, slot, self._make_sampler(params, (base_seed + k) & 0xFFFFFFFF), n_prompt)
            req.seqs.append(seq)
            self._sample(seq, logits_index)

    def _make_sampler(self, params, seed: int):
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = lambda s: llama_cpp.llama_sampler_chain_add(chain, s)  # noqa: E731
        if params.ignore_eos and self._eog_bias:
            add(llama_cpp.llama_sampler_init_logit_bias(self.model.n_vocab, len(self._eog_bias), self._eog_bias))
        if params.greedy:
            add(llama_cpp.llama_sampler_init_greedy())
            return chain
        if params.top_k > 0:
            add(llama_cpp.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1.0:
            add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0.0:
            add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        add(llama_cpp.llama_sampler_init_dist(seed))
        return chain

    def _sample(self, seq: _Seq, logits_index: int) -> None:
        params = seq.req.request.params
        tok = llama_cpp.llama_sampler_sample(seq.sampler, self.ctx, logits_index)
        if seq.logprobs is not None:
            seq.logprobs.append(self._logprob(logits_index, tok, params.logprobs or 0))
        if tok in self.model.eog_ids and not params.ignore_eos:
            if seq.logprobs:
                seq.logprobs.pop()  # the end-of-generation token is not part of the text
            return self._finish(seq, "eos")  # nor of the sample's tokens, so the engine's count leaves it out too
        self.stats.completion_tokens += 1
        seq.generated.append(tok)
        before = len(seq.text)
        seq.text += seq.decoder.decode(self.model.piece(tok))
        if seq.window is not None:
            lp = seq.logprobs[-1].logprob if seq.logprobs else self._logprob(logits_index, tok, 0).logprob
            seq.window.append(lp)
            threshold = params.confidence_stop[1]
            if len(seq.window) == seq.window.maxlen and sum(seq.window) / len(seq.window) < threshold:
                return self._finish(seq, "low_confidence")
        if params.stop:
            window = max(0, before - max(len(s) for s in params.stop) + 1)
            hits = [i for i in (seq.text.find(s, window) for s in params.stop) if i >= 0]
            if hits:
                seq.text = seq.text[: min(hits)]
                return self._finish(seq, "stop")
        if len(seq.generated) >= params.max_tokens or seq.pos + 1 >= self.ctx_limit:
            return self._finish(seq, "length")
        self._emit(seq, len(seq.text) - (max(len(s) for s in params.stop) - 1 if params.stop else 0))
        seq.next_token = tok
        self.slots.append(seq.slot, tok)

    def _logprob(self, logits_index: int, token: int, k: int) -> TokenLogprob:
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, logits_index)
        logits = np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab,))
        m = float(logits.max())
        lse = m + float(np.log(np.exp(logits - m, dtype=np.float64).sum()))
        top: tuple[tuple[str, float], ...] = ()
        if k > 0:
            idx = np.argpartition(-logits, k)[:k]
            idx = idx[np.argsort(-logits[idx])]
            top = tuple((self._text(int(t)), float(logits[t]) - lse) for t in idx)
        return TokenLogprob(self._text(token), float(logits[token]) - lse, top)

    def _text(self, token: int) -> str:
        return self.model.piece(token).decode("utf-8", errors="replace")

    # -- endings ---------------------------------------------------------------------------------------

    def _emit(self, seq: _Seq, upto: int) -> None:
        """Hand the request's text callback what is new up to ``upto`` (text a stop string might still cut is held)."""
        callback = seq.req.request.on_text
        if callback is not None and upto > seq.emitted:
            piece, seq.emitted = seq.text[seq.emitted:upto], upto
            try:
                callback(seq.index, piece)
            except Exception:  # noqa: BLE001 - a listener's failure must not stop the engine
                log.exception("on_text callback failed")

    def _finish(self, seq: _Seq, reason: str) -> None:
        seq.finish = reason
        seq.text += seq.decoder.decode(b"", final=True) if reason != "stop" else ""
        self._emit(seq, len(seq.text))
        seq.req.samples[seq.index] = Sample(
            text=seq.text,
            token_ids=tuple(seq.generated),
            finish_reason=reason,  # type: ignore[arg-type]
            logprobs=tuple(seq.logprobs) if seq.logprobs is not None else None,
        )
        llama_cpp.llama_sampler_free(seq.sampler)
        seq.sampler = None
        self.slots.release(seq.slot)

    def _finish_all(self, req: _Req, reason: str) -> None:
        """End every unfinished sample of ``req`` now (deadline): partial text is kept."""
        for seq in req.seqs:
            if seq.finish is None:
                self._finish(seq, reason)
        for k in range(req.request.n):
            if req.samples[k] is None:
                req.samples[k] = Sample(text="", token_ids=(), finish_reason=reason)  # type: ignore[arg-type]
        for slot in req.slots[len(req.seqs):]:
            self.slots.release(slot)
        self._complete(req)

    def _complete(self, req: _Req) -> None:
        if req in self._active:
            self._active.remove(req)
        if req in self._pending:
            self._pending.remove(req)
        samples = tuple(s for s in req.samples if s is not None)
        usage = Usage(
            prompt_tokens=len(req.tokens),
            cached_prompt_tokens=req.cached,
            completion_tokens=sum(s.n_tokens for s in samples),
            seconds=time.perf_counter() - req.t0,
            requests=1,
        )
        if not req.handle.future.done():
            req.handle.future.set_result(Completion(samples, usage))

    def _drop(self, req: _Req, keep_cache: bool = True) -> None:
        """Forget a request: free its samplers and slots (their evaluated KV stays as cache if ``keep_cache``)."""
        for seq in req.seqs:
            if seq.finish is None:
                llama_cpp.llama_sampler_free(seq.sampler)
                seq.finish = "cancelled"
                self.slots.release(seq.slot)
        for slot in req.slots[len(req.seqs):]:
            self.slots.release(slot)
        if not keep_cache:
            for slot in req.slots:
                llama_cpp.llama_memory_seq_rm(self.mem, slot, -1, -1)
                self.slots.forget(slot)
        if req in self._active:
            self._active.remove(req)
        if req in self._pending:
            self._pending.remove(req)

    def _fail(self, req: _Req, exc: BaseException) -> None:
        self._drop(req, keep_cache=False)
        if not req.handle.future.done():
            req.handle.future.set_exception(exc)


def _waves(sequences: list[list[int]], cells: int) -> list[list[list[int]]]:
    """``sequences`` in order, in groups holding at most ``cells`` tokens (each at least one sequence): reads
    submitted together must fit the KV cache beside what else runs, or the newest would fail for want of room.

    >>> [len(w) for w in _waves([[0] * 300] * 5 + [[0] * 900], 700)]
    [2, 2, 1, 1]
    """
    out: list[list[list[int]]] = []
    held = cells
    for seq in sequences:
        if held + len(seq) > cells:
            out.append([])
            held = 0
        out[-1].append(seq)
        held += len(seq)
    return out


class LlamaCppGenerator:
    """The :class:`ponder.protocols.Generator` over an embedded :class:`LlamaEngine`."""

    def __init__(self, model: str | Path, config: EngineConfig | None = None, *, name: str | None = None):
        from ponder import trained
        from ponder.models import resolve

        path = resolve(str(model))
        found = trained.get(str(model)) if not str(model).endswith(".gguf") else None
        self.adapter = trained.verified_adapter(found) if found is not None else None  # a model trained here
        self.engine = LlamaEngine(path, config, lora=self.adapter)
        self.name = name or (str(model) if not str(model).endswith(".gguf") else Path(model).stem)
        self._sha256: str | None = None

    @property
    def stats(self) -> EngineStats:
        return self.engine.stats

    @property
    def model_sha256(self) -> str:
        """The GGUF's sha256 (from the registry's verified stamp when it is a registry model, else hashed once)."""
        if self._sha256 is None:
            import hashlib

            from ponder.models import file_sha256

            self._sha256 = file_sha256(self.engine.model.path)
            if self.adapter is not None:  # base + adapter: another model, whose hidden states a probe must not mix up
                self._sha256 = hashlib.sha256(f"{self._sha256}+lora:{file_sha256(self.adapter)}".encode()).hexdigest()
        return self._sha256

    async def read_hidden_states(self, prompts, completions) -> HiddenStates:
        """The final hidden state at the last token of each prompt + completion (as the model would read them),
        read by the generating engine itself (:meth:`LlamaEngine.submit_read`), with the tokens read and how many of
        them came from its cache: a path this engine just generated is still cached, so reading it (with a
        program's output appended) evaluates only what was appended; a question's paths share the question."""
        tokens = [self.engine.model.encode_prompt(p, c) for p, c in zip(prompts, completions, strict=True)]
        reads = []
        for wave in _waves(tokens, self.engine.config.n_ctx // 2):
            handles = [self.engine.submit_read(t) for t in wave]
            try:
                reads += await asyncio.gather(*(asyncio.wrap_future(h.future) for h in handles))
            except BaseException:
                for h in handles:
                    h.cancel()
                raise
        states = np.vstack([r.state for r in reads]) if reads else np.zeros((0, self.engine.model.n_embd), dtype=np.float32)
        return HiddenStates(states, sum(r.tokens for r in reads), sum(r.reused for r in reads))

    def render(self, request: GenerationRequest) -> str:
        return self.engine.model.render(request.prompt, request.prefix)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        handles = [self.engine.submit(r) for r in requests]
        try:
            return list(await asyncio.gather(*(asyncio.wrap_future(h.future) for h in handles)))
        except BaseException:
            for h in handles:
                h.cancel()
            raise

    def generate_sync(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        handles = [self.engine.submit(r) for r in requests]
        try:
            return [h.future.result() for h in handles]
        except BaseException:
            for h in handles:
                h.cancel()
            raise

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> LlamaCppGenerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
