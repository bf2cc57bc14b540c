"""A PEFT LoRA adapter written as a GGUF LoRA adapter, the file llama.cpp applies to its base model at load time
(``llama_adapter_lora_init``), so a model trained here runs in the same embedded engine as every other.

The layout follows llama.cpp's own converter (convert_lora_to_gguf.py): the file is typed ``adapter`` with
``adapter.type = lora`` and ``adapter.lora.alpha``, names the base model's architecture, and holds for each adapted
weight ``<gguf tensor name>.lora_a`` (rank x in) and ``.lora_b`` (out x rank), llama.cpp scaling them by
alpha / rank as PEFT does. For the ``llama`` architecture the GGUF stores the query and key projections with their
rows permuted for rotary embeddings (and transformers undoes that when it reads a GGUF), so their ``lora_b`` rows
are permuted the same way here; ``qwen2`` stores them as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Hugging Face module -> GGUF tensor name, for the decoder layers of the architectures ponder's models use
MODULES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
           "mlp.down_proj": "ffn_down"}
ARCHITECTURES = ("llama", "qwen2")
_NAME = re.compile(r"(?:base_model\.model\.)?model\.layers\.(\d+)\.(.+)\.lora_([AB])(?:\.default)?\.weight$")


def gguf_name(peft_name: str) -> tuple[str, str]:
    """``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` -> (``blk.3.attn_q.weight.lora_a``, ``q``).

    >>> gguf_name("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight")
    ('blk.3.attn_q.weight.lora_a', 'attn_q')
    """
    m = _NAME.match(peft_name)
    if not m or m.group(2) not in MODULES:
        raise ValueError(f"cannot place the adapter tensor {peft_name!r} in a GGUF (adapted modules: {', '.join(MODULES)})")
    target = MODULES[m.group(2)]
    return f"blk.{m.group(1)}.{target}.weight.lora_{m.group(3).lower()}", target


def rope_permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """The row order llama.cpp's converter gives a llama query/key projection (``LlamaModel.permute``)."""
    out = rows.shape[0]
    return rows.reshape(n_head, 2, out // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def write_gguf_adapter(tensors: dict[str, np.ndarray], out: Path, *, arch: str, alpha: float, n_head: int, n_head_kv: int,
                       name: str = "ponder-lora") -> Path:
    """Write PEFT's adapter tensors (``lora_A``: rank x in, ``lora_B``: out x rank, as float arrays) as a GGUF LoRA
    adapter for a base model of architecture ``arch``."""
    import gguf

    if arch not in ARCHITECTURES:
        raise ValueError(f"ponder writes GGUF adapters for {', '.join(ARCHITECTURES)} models, not {arch!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    writer.add_name(name)
    for key in sorted(tensors):
        target_name, target = gguf_name(key)
        data = np.ascontiguousarray(tensors[key], dtype=np.float32)
        if arch == "llama" and target_name.endswith("lora_b") and target in ("attn_q", "attn_k"):
            data = rope_permute(data, n_head if target == "attn_q" else n_head_kv)
        writer.add_tensor(target_name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
