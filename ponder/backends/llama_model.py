"""A loaded GGUF model and its vocabulary, over llama-cpp-python's low-level API.

Owns what does not depend on a context: tokenizing, detokenizing, end-of-generation tokens and the chat
template from the GGUF metadata (rendered with a sandboxed Jinja2, as Hugging Face tokenizers do).
"""

from __future__ import annotations

import ctypes
import datetime
import threading
from functools import cached_property
from pathlib import Path

import llama_cpp

from ponder.errors import ModelError
from ponder.types import Prompt

_backend_lock = threading.Lock()
_backend_ready = False
_log_callback = None


def _quiet_backend() -> None:
    """Initialise llama.cpp once per process and silence its logging (errors are raised as exceptions)."""
    global _backend_ready, _log_callback
    with _backend_lock:
        if _backend_ready:
            return
        llama_cpp.llama_backend_init()

        @llama_cpp.llama_log_callback
        def _drop(level, text, user_data):  # noqa: ARG001
            return None

        _log_callback = _drop  # keep a reference: llama.cpp holds the raw pointer
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
        _backend_ready = True


class LlamaModel:
    def __init__(self, path: Path | str, n_gpu_layers: int = 0, lora: Path | str | None = None):
        """``n_gpu_layers``: layers offloaded to the GPU (-1: all), where this llama.cpp build has a GPU backend
        (``scripts/install.sh`` builds one when it finds CUDA with a GPU, or ``PONDER_GPU=cuda|vulkan|metal``);
        ``lora``: a GGUF LoRA adapter over this model (``ponder train``), applied by every context made from it
        (:meth:`apply_adapter`)."""
        _quiet_backend()
        self.path = Path(path)
        params = llama_cpp.llama_model_default_params()
        self.n_gpu_layers = n_gpu_layers if llama_cpp.llama_supports_gpu_offload() else 0
        if n_gpu_layers and not self.n_gpu_layers:
            import sys

            print(f"ponder: --gpu-layers {n_gpu_layers} asked, but this llama.cpp build has no GPU backend: running on "
                  "the CPU (rebuild with PONDER_GPU=cuda|vulkan|metal bash scripts/install.sh)", file=sys.stderr)
        params.n_gpu_layers = 2**31 - 1 if self.n_gpu_layers < 0 else self.n_gpu_layers
        model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), params)
        if not model:
            raise ModelError(f"llama.cpp could not load {self.path}: is it a valid GGUF file?")
        self.ptr = model
        self.lora = Path(lora) if lora is not None else None
        self.adapter = None
        if self.lora is not None:
            self.adapter = llama_cpp.llama_adapter_lora_init(model, str(self.lora).encode())
            if not self.adapter:
                llama_cpp.llama_model_free(model)
                raise ModelError(f"llama.cpp could not load the LoRA adapter {self.lora} over {self.path}: is it a GGUF "
                                 f"adapter for this model's architecture?")
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(model)
        self.n_embd = llama_cpp.llama_model_n_embd(model)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self._pieces: dict[int, bytes] = {}
        self.eog_ids = frozenset(t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self.vocab, t))

    def apply_adapter(self, ctx) -> None:
        """Set this model's LoRA adapter (if any) on a context made from it, at scale 1."""
        if self.adapter is None:
            return
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales) != 0:
            raise ModelError(f"llama.cpp could not apply the LoRA adapter {self.lora}")

    def close(self) -> None:
        if self.adapter:
            llama_cpp.llama_adapter_lora_free(self.adapter)
            self.adapter = None
        if self.ptr:
            llama_cpp.llama_model_free(self.ptr)
            self.ptr = None

    # -- metadata ---------------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = llama_cpp.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            llama_cpp.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    @cached_property
    def name(self) -> str:
        return self.meta("general.name") or self.path.stem

    # -- tokens -----------------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes of one token (special tokens rendered as their text); memoised."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        out = buf.raw[:n]
        self._pieces[token] = out
        return out

    def detokenize(self, tokens: list[int] | tuple[int, ...]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    # -- chat template ----------------------------------------------------------------------------------

    @cached_property
    def chat_template(self) -> str | None:
        raw = llama_cpp.llama_model_chat_template(self.ptr, None)
        return raw.decode("utf-8") if raw else None

    @cached_property
    def _template(self):
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str):
            raise ModelError(f"chat template of {self.name}: {message}")

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
        return env.from_string(self.chat_template)

    def _special_text(self, token: int) -> str:
        return self.piece(token).decode("utf-8", errors="replace") if token >= 0 else ""

    def render(self, prompt: Prompt, prefix: str = "") -> str:
        """The exact text the model sees: the chat template applied (generation prompt added), then ``prefix``."""
        if prompt.text is not None:
            return prompt.text + prefix
        if not self.chat_template:
            raise ModelError(f"{self.name} has no chat template in its GGUF metadata: send a raw text prompt instead")
        text = self._template.render(
            messages=[{"role": m.role, "content": m.content} for m in prompt.messages],
            add_generation_prompt=True,
            bos_token=self._special_text(llama_cpp.llama_vocab_bos(self.vocab)),
            eos_token=self._special_text(llama_cpp.llama_vocab_eos(self.vocab)),
        )
        return text + prefix

    def encode_prompt(self, prompt: Prompt, prefix: str = "") -> list[int]:
        """Tokens for ``prompt`` + ``prefix``. A BOS is added only when the vocabulary asks for one and the
        rendered template did not already write it."""
        text = self.render(prompt, prefix)
        bos = self._special_text(llama_cpp.llama_vocab_bos(self.vocab))
        add_special = self.add_bos and not (bos and text.startswith(bos))
        return self.tokenize(text, add_special=add_special)
