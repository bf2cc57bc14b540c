"""One training run: a LoRA on a registry model, trained by TRL (SFTTrainer, DPOTrainer, GRPOTrainer) on CPU,
checkpointed and resumable, logged step by step, and handed back as a GGUF LoRA adapter registered under a name,
so the embedded engine serves the trained model like any other.

The run directory holds ``checkpoints/`` (TRL's, every ``save_steps``; a run started again with the same directory
resumes from the last one), ``log.jsonl`` (every logged step: loss, reward, learning rate, the held-out slice's
figures at each evaluation), ``adapter/`` (PEFT's files) and ``adapter.gguf``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ponder.errors import InvalidRequest

Method = Literal["sft", "dpo", "grpo"]
METHODS: tuple[str, ...] = ("sft", "dpo", "grpo")
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainConfig:
    method: Method
    base: str  # a registry model
    name: str  # what the trained model is registered as
    out: Path  # the run directory
    data: Path | None = None  # sft, dpo: a `ponder traces export` JSONL
    task: str | None = None  # grpo: the task whose items are the prompts
    task_limit: int = 64
    task_seed: int = 0
    prompt: str | None = None  # grpo: the prompt template the items are asked under (cot, boxed, pal, ...)
    rewards: tuple[str, ...] = ("accuracy", "format")
    steps: int = 100
    learning_rate: float = 1e-4
    batch: int = 4  # sequences per step (GRPO: completions per step, a multiple of group)
    grad_accum: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    target_modules: tuple[str, ...] = ALL_LINEAR
    max_length: int = 512  # tokens per training sequence (sft, dpo)
    group: int = 4  # GRPO: completions per prompt
    max_completion_tokens: int = 256  # GRPO
    temperature: float = 0.8  # GRPO's sampling
    beta: float = 0.0  # GRPO: KL weight against the base (0: none, as in DAPO and TRL's default); DPO: its beta (0 -> 0.1)
    save_steps: int = 25
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, a third more time
    eval_fraction: float = 0.1
    seed: int = 0
    threads: int | None = None
    resume: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidRequest(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method in ("sft", "dpo") and self.data is None:
            raise InvalidRequest(f"ponder train {self.method} needs --data FILE (from `ponder traces export RUN --format {self.method}`)")
        if self.method == "grpo" and self.task is None:
            raise InvalidRequest("ponder train grpo needs --task TASK (its items are the prompts, its answers the reward)")
        if self.method == "grpo" and self.batch % self.group:
            raise InvalidRequest(f"--batch ({self.batch}) must be a multiple of --group ({self.group}): GRPO compares the "
                                 "completions of one prompt")
        if self.steps < 1 or self.save_steps < 1 or self.batch < 1:
            raise InvalidRequest("steps, save_steps and batch must be >= 1")


@dataclass
class TrainOutcome:
    name: str
    adapter: Path
    steps: int
    seconds: float
    log: Path
    metrics: dict[str, Any] = field(default_factory=dict)


def _datasets(cfg: TrainConfig):
    from datasets import Dataset

    from ponder.training.data import read_records, split, task_records

    if cfg.method == "grpo":
        records, source = task_records(cfg.task, cfg.task_limit, cfg.task_seed, cfg.prompt), f"task {cfg.task} ({cfg.task_limit} items, seed {cfg.task_seed})"
    else:
        records, source = read_records(cfg.data, cfg.method), str(cfg.data)
    parts = split(records, cfg.eval_fraction, source)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "item"} for r in rs]  # noqa: E731
    held = Dataset.from_list(strip(parts.held_out)) if parts.held_out else None
    return Dataset.from_list(strip(parts.train)), held, parts


def _log_file(path: Path, progress: Callable[[dict], None] | None):
    """A TrainerCallback writing every logged step to ``log.jsonl`` (with wall time) and telling ``progress``
    (transformers is imported here, when a run starts, not when the CLI loads)."""
    from transformers import TrainerCallback

    class LogFile(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            rec = {"step": state.global_step, "time": round(time.time(), 3), **(logs or {})}
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            if progress is not None:
                progress(rec)

    return LogFile()


def _trainer(cfg: TrainConfig, model, tokenizer, train, held):
    from peft import LoraConfig

    common = dict(output_dir=str(cfg.out / "checkpoints"), max_steps=cfg.steps, per_device_train_batch_size=cfg.batch,
                  per_device_eval_batch_size=cfg.batch, gradient_accumulation_steps=cfg.grad_accum,
                  learning_rate=cfg.learning_rate, logging_steps=1, save_steps=cfg.save_steps, save_total_limit=2,
                  report_to=[], use_cpu=True, seed=cfg.seed, data_seed=cfg.seed, gradient_checkpointing=cfg.gradient_checkpointing,
                  eval_strategy="steps" if held is not None else "no", eval_steps=cfg.save_steps)
    peft = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=list(cfg.target_modules), lora_dropout=0.0,
                      task_type="CAUSAL_LM")
    if cfg.method == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTTrainer(model=model, args=SFTConfig(max_length=cfg.max_length, **common), train_dataset=train,
                          eval_dataset=held, processing_class=tokenizer, peft_config=peft)
    if cfg.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer(model=model, args=DPOConfig(max_length=cfg.max_length, beta=cfg.beta or 0.1, **common),
                          train_dataset=train, eval_dataset=held, processing_class=tokenizer, peft_config=peft)
    from trl import GRPOConfig, GRPOTrainer

    from ponder.training.rewards import named

    args = GRPOConfig(num_generations=cfg.group, max_completion_length=cfg.max_completion_tokens, beta=cfg.beta,
                      temperature=cfg.temperature, **common)
    return GRPOTrainer(model=model, reward_funcs=named(cfg.rewards), args=args, train_dataset=train, eval_dataset=held,
                       processing_class=tokenizer, peft_config=peft)


def _last_checkpoint(cfg: TrainConfig) -> str | None:
    found = sorted((cfg.out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    return str(found[-1]) if found else None


def train(cfg: TrainConfig, progress: Callable[[dict], None] | None = None) -> TrainOutcome:
    """Train, write the GGUF adapter, register the model; resumes from the run directory's last checkpoint."""
    from ponder.training.base_model import load

    model, tokenizer, info = load(cfg.base)
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "config.json").write_text(json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
                                                    indent=2))
    train_set, held, parts = _datasets(cfg)
    trainer = _trainer(cfg, model, tokenizer, train_set, held)
    log = cfg.out / "log.jsonl"
    trainer.add_callback(_log_file(log, progress))
    resume = _last_checkpoint(cfg) if cfg.resume else None
    started = time.time()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.time() - started
    trainer.save_model(str(cfg.out / "adapter"))
    adapter = export_adapter(trainer.model, info, cfg.out / "adapter.gguf", alpha=cfg.lora_alpha, name=cfg.name)
    history = trainer.state.log_history
    metrics = {"steps": trainer.state.global_step, "train_seconds": round(seconds, 1), "resumed_from": resume,
               "train_records": len(parts.train), "held_out_records": len(parts.held_out),
               "final": next((h for h in reversed(history) if "loss" in h or "reward" in h), {}),
               "held_out": next((h for h in reversed(history) if any(k.startswith("eval_") for k in h)), {})}
    from ponder import trained

    trained.register(cfg.name, cfg.base, adapter, method=cfg.method, data=parts.source, metrics=metrics)
    return TrainOutcome(cfg.name, adapter, trainer.state.global_step, seconds, log, metrics)


def export_adapter(peft_model, info, out: Path, *, alpha: float, name: str) -> Path:
    """A trained PEFT model's LoRA tensors as a GGUF adapter for ``info``'s base (ponder.training.gguf_adapter)."""
    from peft.utils import get_peft_model_state_dict

    from ponder.training.gguf_adapter import write_gguf_adapter

    tensors = {k: v.detach().float().cpu().numpy() for k, v in get_peft_model_state_dict(peft_model).items()}
    return write_gguf_adapter(tensors, out, arch=info.arch, alpha=alpha, n_head=info.n_head, n_head_kv=info.n_head_kv,
                              name=name)
