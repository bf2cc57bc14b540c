"""A registry model's GGUF read into transformers for training: the weights dequantised to float32 (transformers
reads GGUF checkpoints, undoing llama.cpp's layout), its tokenizer and chat template from the same file, and the
facts the adapter converter needs (architecture, attention heads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ponder.errors import InvalidRequest


@dataclass(frozen=True)
class BaseInfo:
    name: str  # the registry model trained on
    gguf: Path
    arch: str  # llama, qwen2
    n_head: int
    n_head_kv: int


def offline() -> None:
    """Everything a training run reads is local (the GGUF, its tokenizer): no model hub, and no waiting on one."""
    import os

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def needs_training_extras() -> None:
    offline()
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise InvalidRequest(f"ponder train needs its extras ({exc.name} is missing): pip install torch==2.13.0 "
                             "'ponder[train]' (the CPU wheel of torch first, so pip does not fetch a CUDA build)") from None


def load(name: str):
    """(model, tokenizer, BaseInfo) for a registry model, ready to train (float32, marked as a plain model)."""
    needs_training_extras()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ponder import models

    if name not in models.REGISTRY:
        raise InvalidRequest(f"ponder train starts from a registry model ({', '.join(models.REGISTRY)}), got {name!r}")
    path = models.resolve(name)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    # the weights are dequantised: a plain float model now, whatever the GGUF loader recorded (transformers refuses to
    # train a model it believes quantized)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    c = model.config
    info = BaseInfo(name, path, c.model_type, c.num_attention_heads, getattr(c, "num_key_value_heads", None) or c.num_attention_heads)
    return model, tokenizer, info
