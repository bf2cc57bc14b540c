"""Generator implementations. Strategies never import this package; the CLI, server and evaluator do."""

from __future__ import annotations

from ponder.protocols import Generator


def open_generator(model: str | None = None, *, url: str | None = None, api_key: str | None = None,
                   threads: int | None = None, n_ctx: int | None = None, n_slots: int | None = None,
                   max_concurrency: int = 8, timeout: float = 600.0, gpu_layers: int = 0) -> Generator:
    """The embedded llama.cpp engine for a registry model or GGUF path, or, with ``url``, an OpenAI-compatible
    server (``model`` is then the server's model name)."""
    if url:
        from ponder.backends.openai_http import OpenAIHTTPGenerator

        return OpenAIHTTPGenerator(url, model=model, api_key=api_key, max_concurrency=max_concurrency, timeout=timeout)
    from ponder.backends.llamacpp import EngineConfig, LlamaCppGenerator, default_threads
    from ponder.models import DEFAULT_MODEL

    cfg = EngineConfig()
    cfg = EngineConfig(n_ctx=n_ctx or cfg.n_ctx, n_slots=n_slots or cfg.n_slots, n_threads=threads or default_threads(),
                       n_gpu_layers=gpu_layers)
    return LlamaCppGenerator(model or DEFAULT_MODEL, cfg)
