"""The policy's own hidden states, read through llama.cpp's embeddings output: the final hidden state at the last
token of a (prompt + path) sequence, the feature a learned verifier (probe) scores. The embedded engine reads them
itself, from its own cache (``LlamaEngine.submit_read``); :class:`HiddenStateReader` is the standalone reader: a
fresh llama.cpp context over the GGUF, in embeddings mode with last-token pooling, holding no engine (the reference
the engine's reads are tested against).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import numpy as np


@dataclass(frozen=True)
class HiddenStates:
    states: np.ndarray  # one row per sequence
    tokens: int  # tokens the sequences hold (what reading them stands for)
    reused: int  # of those, tokens whose state was reused from the previous sequence's cache, not evaluated


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share.

    >>> shared_prefix([1, 2, 3], [1, 2, 4, 5]), shared_prefix([], [1])
    (2, 0)
    """
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class HiddenStateReader:
    """Reads sequences one after another in one llama.cpp sequence, keeping the cache of the last one: the tokens a
    sequence shares with the one before (the question, when a verifier reads the paths of one question) are not
    evaluated again, only dropped from where the two differ. A causal model's state at a token depends on the tokens
    before it only, so the state read is the one a fresh context gives, up to float rounding (llama.cpp's kernels
    see batches of another shape: bit for bit on SmolLM2 in the tests; on the 0.5B model a program read twice moved
    bench/verifier's AUROC by 0.0004)."""

    def __init__(self, model_path: Path | str, *, n_ctx: int = 4096, n_threads: int | None = None, lora: Path | None = None):
        self.path = Path(model_path)
        self._llm = llama_cpp.Llama(str(self.path), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST,
                                    n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=n_threads, verbose=False,
                                    lora_path=str(lora) if lora is not None else None)
        self.dim = self._llm.n_embd()
        self.max_tokens = n_ctx
        self._lock = threading.Lock()
        self._cached: list[int] = []  # the tokens whose states the cache holds, from position 0

    def read(self, sequences: Sequence[Sequence[int]]) -> HiddenStates:
        """One row per token sequence: the hidden state after its last token (sequences longer than the context
        keep their last ``max_tokens`` tokens: the end of a path is what a verifier judges)."""
        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        total = reused = 0
        with self._lock:
            llm = self._llm
            for i, tokens in enumerate(sequences):
                tokens = list(tokens)[-self.max_tokens:]
                if not tokens:
                    continue
                keep = min(shared_prefix(self._cached, tokens), len(tokens) - 1)  # the last token is always evaluated
                self._cached = []  # until the decode below succeeds, the cache is not known to hold anything
                if keep:
                    llm._ctx.kv_cache_seq_rm(0, keep, -1)  # noqa: SLF001 - the pinned llama-cpp-python's context
                else:
                    llm._ctx.kv_cache_clear()  # noqa: SLF001
                llm._batch.reset()  # noqa: SLF001 - its batch, to pass our own tokens at their positions
                llm._batch.set_batch(tokens[keep:], keep, True)  # noqa: SLF001
                llm._ctx.decode(llm._batch)  # noqa: SLF001
                self._cached = tokens
                ptr = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)  # noqa: SLF001
                out[i] = np.ctypeslib.as_array(ptr, shape=(self.dim,))
                total += len(tokens)
                reused += keep
        return HiddenStates(out, total, reused)

    def close(self) -> None:
        with self._lock:
            self._llm.close()
