"""The policy's own hidden states, read through llama.cpp's embeddings output: the final hidden state at the last
token of a (prompt + path) sequence, the feature a learned verifier (probe) scores. A second llama.cpp context over
the same GGUF, in embeddings mode with last-token pooling, so reading never disturbs the generating engine.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import numpy as np


class HiddenStateReader:
    def __init__(self, model_path: Path | str, *, n_ctx: int = 4096, n_threads: int | None = None, lora: Path | None = None):
        self.path = Path(model_path)
        self._llm = llama_cpp.Llama(str(self.path), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST,
                                    n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=n_threads, verbose=False,
                                    lora_path=str(lora) if lora is not None else None)
        self.dim = self._llm.n_embd()
        self.max_tokens = n_ctx
        self._lock = threading.Lock()

    def read(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """One row per token sequence: the hidden state after its last token (sequences longer than the context
        keep their last ``max_tokens`` tokens: the end of a path is what a verifier judges)."""
        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        with self._lock:
            llm = self._llm
            for i, tokens in enumerate(sequences):
                tokens = list(tokens)[-self.max_tokens:]
                if not tokens:
                    continue
                llm._batch.reset()  # noqa: SLF001 - the pinned llama-cpp-python's batch, to pass our own tokens
                llm._ctx.kv_cache_clear()  # noqa: SLF001
                llm._batch.add_sequence(tokens, 0, True)  # noqa: SLF001
                llm._ctx.decode(llm._batch)  # noqa: SLF001
                ptr = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)  # noqa: SLF001
                out[i] = np.ctypeslib.as_array(ptr, shape=(self.dim,))
        return out

    def close(self) -> None:
        with self._lock:
            self._llm.close()
