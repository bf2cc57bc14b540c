"""Models trained here: a base registry model plus a GGUF LoRA adapter (``ponder train``), registered under a name in
``<cache>/trained/trained.json`` (``$PONDER_TRAINED`` to keep them elsewhere) so every command opens them like any
model (``ask``, ``eval``, ``serve``: ``--model NAME``). The adapter lives beside it as ``NAME.gguf`` and is
hash-verified whenever it is opened;
the record keeps what it was trained on, how, for how long, and what it measured.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ponder.errors import ModelError

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class TrainedModel:
    name: str
    base: str  # a registry model name
    adapter: str  # path of the GGUF LoRA adapter in the cache
    adapter_sha256: str
    method: str  # sft, dpo, grpo
    data: str  # what it was trained on
    created: float = field(default_factory=time.time)
    metrics: dict[str, Any] = field(default_factory=dict)  # steps, seconds, final loss / reward, ...

    @property
    def adapter_path(self) -> Path:
        return Path(self.adapter)


def trained_dir(root: Path | None = None) -> Path:
    import os

    from ponder.models import cache_dir

    if root is not None:
        return root / "trained"
    env = os.environ.get("PONDER_TRAINED")
    return Path(env).expanduser() if env else cache_dir() / "trained"


def _index(root: Path | None = None) -> Path:
    return trained_dir(root) / "trained.json"


def all_trained(root: Path | None = None) -> dict[str, TrainedModel]:
    path = _index(root)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not readable ({exc}): move it aside to start a new list of trained models") from None
    return {name: TrainedModel(**rec) for name, rec in raw.items()}


def get(name: str, root: Path | None = None) -> TrainedModel | None:
    return all_trained(root).get(name)


def register(name: str, base: str, adapter: Path, *, method: str, data: str, metrics: dict[str, Any],
             root: Path | None = None) -> TrainedModel:
    """Copy ``adapter`` into the cache and record it under ``name`` (a name of the registry is refused; a trained
    name is replaced)."""
    from ponder.models import REGISTRY, sha256_file

    if not _NAME.match(name) or name in REGISTRY:
        raise ModelError(f"{name!r} cannot name a trained model: use lowercase letters, digits, '.', '_' or '-', and not "
                         f"a registry model's name ({', '.join(REGISTRY)})")
    if base not in REGISTRY:
        raise ModelError(f"the base of a trained model must be a registry model, got {base!r}")
    dest = trained_dir(root) / f"{name}.gguf"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    shutil.copyfile(adapter, tmp)
    tmp.replace(dest)
    model = TrainedModel(name, base, str(dest), sha256_file(dest), method, data, metrics=metrics)
    index = {k: asdict(v) for k, v in all_trained(root).items()}
    index[name] = asdict(model)
    path = _index(root)
    path.write_text(json.dumps(index, indent=2, sort_keys=True))
    return model


def verified_adapter(model: TrainedModel) -> Path:
    """The adapter's path once its bytes match the recorded sha256."""
    from ponder.models import sha256_file

    path = model.adapter_path
    if not path.is_file():
        raise ModelError(f"the adapter of {model.name!r} is missing ({path}): train it again with `ponder train`")
    digest = sha256_file(path)
    if digest != model.adapter_sha256:
        raise ModelError(f"the adapter of {model.name!r} at {path} does not match its recorded hash (sha256 {digest}, "
                         f"expected {model.adapter_sha256}): its bytes changed; train it again")
    return path
