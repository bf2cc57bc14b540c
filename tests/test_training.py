"""Training on what search found: the reward functions on scripted completions, the training data checks, the
registry of trained models (hash-verified), and, end to end on SmolLM2 on the CPU, each trainer for a few steps,
resuming from a checkpoint, and the GGUF round trip: the adapter written here changes llama.cpp's output as the
trained model's own forward pass does, and the registered name opens in the embedded engine."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from ponder import trained
from ponder.errors import InvalidRequest, ModelError
from ponder.testing import ScriptedExecutor
from ponder.training.data import read_records, split
from ponder.training.gguf_adapter import gguf_name, rope_permute
from ponder.training.rewards import accuracy, format_, named, program_reward
from ponder.training.run import TrainConfig

COMPLETIONS = ["14 * 3 = 42 and 23 * 2 = 46, so 42 + 46 = 88. The answer is 88",
               [{"role": "assistant", "content": "The answer is 98"}],
               "I am not sure what",
               "```python\nprint(14 * 3 + 23 * 2)\n```"]


def test_rewards_on_scripted_completions():
    answers = ["88"] * 4
    assert accuracy(COMPLETIONS, answers) == [1.0, 0.0, 0.0, 0.0]
    assert format_(COMPLETIONS) == [1.0, 1.0, 0.0, 1.0]  # an answer line, or a program to run
    ran = ScriptedExecutor(lambda code: "88\n")
    assert program_reward(ran)(COMPLETIONS, answers) == [0.0, 0.0, 0.0, 1.0]
    assert ran.calls == [["print(14 * 3 + 23 * 2)\n"]]  # only the completion with a program ran
    assert program_reward(ScriptedExecutor(lambda code: "98\n"))(COMPLETIONS, answers)[3] == 0.0
    assert [f.__name__ for f in named(["accuracy", "format"])] == ["accuracy_reward", "format_reward"]
    with pytest.raises(InvalidRequest, match="unknown reward"):
        named(["accuracy", "vibes"])


def test_training_data_is_checked_and_split_by_item(tmp_path):
    path = tmp_path / "sft.jsonl"
    recs = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}], "item": f"it{i // 2}"}
            for i in range(40)]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    got = read_records(path, "sft")
    parts = split(got, 0.25, str(path))
    assert len(parts.train) + len(parts.held_out) == 40 and parts.held_out
    assert not {r["item"] for r in parts.train} & {r["item"] for r in parts.held_out}  # an item on one side only
    with pytest.raises(InvalidRequest, match="needs prompt, chosen, rejected"):
        read_records(path, "dpo")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(InvalidRequest, match="bad.jsonl:1"):
        read_records(bad, "sft")
    with pytest.raises(InvalidRequest, match="cannot read"):
        read_records(tmp_path / "missing.jsonl", "sft")
    with pytest.raises(InvalidRequest, match="needs --data"):
        TrainConfig(method="sft", base="smollm2-135m", name="x", out=tmp_path)
    with pytest.raises(InvalidRequest, match="multiple of --group"):
        TrainConfig(method="grpo", base="smollm2-135m", name="x", out=tmp_path, task="t", batch=6, group=4)


def test_adapter_tensor_names_and_the_llama_row_order():
    assert gguf_name("base_model.model.model.layers.11.mlp.down_proj.lora_B.weight") == ("blk.11.ffn_down.weight.lora_b", "ffn_down")
    with pytest.raises(ValueError, match="cannot place"):
        gguf_name("base_model.model.lm_head.lora_A.weight")
    rows = np.arange(8 * 3).reshape(8, 3)  # 2 heads of 4 rows: each head's halves interleaved
    assert rope_permute(rows, 2)[:, 0].tolist() == [0, 6, 3, 9, 12, 18, 15, 21]


def test_the_registry_of_trained_models_verifies_adapters(tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_TRAINED", str(tmp_path / "trained"))
    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF fake adapter bytes")
    rec = trained.register("my-model", "smollm2-135m", adapter, method="sft", data="x.jsonl", metrics={"steps": 3})
    assert trained.get("my-model") == rec and trained.verified_adapter(rec).read_bytes() == adapter.read_bytes()
    for name in ("smollm2-135m", "Bad Name", "../x"):
        with pytest.raises(ModelError, match="cannot name"):
            trained.register(name, "smollm2-135m", adapter, method="sft", data="x", metrics={})
    with pytest.raises(ModelError, match="registry model"):
        trained.register("other", "some/path.gguf", adapter, method="sft", data="x", metrics={})
    rec.adapter_path.write_bytes(b"GGUF tampered")
    with pytest.raises(ModelError, match="does not match its recorded hash"):
        trained.verified_adapter(rec)


# -- end to end on SmolLM2 (torch on the CPU) -------------------------------------------------------------------

_LOADED: dict = {}


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A registry of trained models in a temporary directory, and the base model read from its GGUF once for the
    module (each training run gets a fresh copy: PEFT adds its layers to the model it is given)."""
    pytest.importorskip("trl")
    import copy

    import ponder.training.base_model as bm

    monkeypatch.setenv("PONDER_TRAINED", str(tmp_path / "trained"))
    real = bm.load

    def cached(name):
        if name not in _LOADED:
            _LOADED[name] = real(name)
        model, tokenizer, info = _LOADED[name]
        return copy.deepcopy(model), tokenizer, info

    monkeypatch.setattr(bm, "load", cached)
    return tmp_path


def sft_data(path, n=12):
    recs = [{"messages": [{"role": "user", "content": f"What is {i} + 1?"}, {"role": "assistant", "content": f"The answer is {i + 1}."}],
             "item": f"i{i}"} for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return path


TINY = dict(batch=2, lora_r=4, lora_alpha=8, max_length=48, learning_rate=5e-3, threads=2)


@pytest.mark.e2e
def test_sft_trains_resumes_and_comes_back_as_a_model_the_engine_serves(registry, smol_path):
    from ponder.backends.llamacpp import EngineConfig, LlamaCppGenerator
    from ponder.strategies import run
    from ponder.training.run import train
    from ponder.types import Problem

    data = sft_data(registry / "sft.jsonl")
    out = registry / "run"
    first = train(TrainConfig(method="sft", base="smollm2-135m", name="smol-sft", out=out, data=data, steps=2, save_steps=1, **TINY))
    assert first.steps == 2 and (out / "checkpoints" / "checkpoint-2").is_dir()
    again = train(TrainConfig(method="sft", base="smollm2-135m", name="smol-sft", out=out, data=data, steps=3, save_steps=1, **TINY))
    assert again.steps == 3 and again.metrics["resumed_from"].endswith("checkpoint-2")  # one more step, not three
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3] and any("eval_loss" in r for r in log)
    rec = trained.get("smol-sft")
    assert rec.base == "smollm2-135m" and rec.method == "sft" and rec.metrics["steps"] == 3
    gen = LlamaCppGenerator("smol-sft", EngineConfig(n_ctx=1024, n_slots=4))
    try:
        assert gen.adapter == rec.adapter_path and gen.name == "smol-sft"
        r = asyncio.run(run("greedy?max_tokens=12", Problem("What is 3 + 1?"), gen))
        assert r.candidates[0].tokens > 0
        from ponder.models import file_sha256

        assert len(gen.model_sha256) == 64 and gen.model_sha256 != file_sha256(smol_path)  # base + adapter: another model
    finally:
        gen.close()
    rec.adapter_path.write_bytes(rec.adapter_path.read_bytes()[:-8])  # a changed adapter is refused, not loaded
    with pytest.raises(ModelError, match="recorded hash"):
        LlamaCppGenerator("smol-sft", EngineConfig(n_ctx=1024, n_slots=4))


@pytest.mark.e2e
def test_dpo_and_grpo_train_a_step(registry, smol_path):
    from ponder.training.run import train

    pairs = registry / "dpo.jsonl"
    pairs.write_text("\n".join(json.dumps({"prompt": [{"role": "user", "content": f"What is {i} + 1?"}],
                                           "chosen": [{"role": "assistant", "content": f"The answer is {i + 1}."}],
                                           "rejected": [{"role": "assistant", "content": f"The answer is {i + 7}."}],
                                           "item": f"i{i}"}) for i in range(10)) + "\n")
    dpo = train(TrainConfig(method="dpo", base="smollm2-135m", name="smol-dpo", out=registry / "dpo", data=pairs, steps=1,
                            save_steps=5, **TINY))
    assert dpo.steps == 1 and trained.get("smol-dpo").method == "dpo" and "loss" in dpo.metrics["final"]
    grpo = train(TrainConfig(method="grpo", base="smollm2-135m", name="smol-grpo", out=registry / "grpo",
                             task="ponder.testing:ArithmeticTask", task_limit=8, steps=1, group=2, max_completion_tokens=12,
                             save_steps=5, **TINY))
    log = [json.loads(x) for x in (registry / "grpo" / "log.jsonl").read_text().splitlines()]
    assert grpo.steps == 1 and any("rewards/accuracy_reward/mean" in r or "reward" in r for r in log)
    assert trained.get("smol-grpo").data.startswith("task ponder.testing:ArithmeticTask")


@pytest.mark.e2e
def test_the_gguf_adapter_moves_llama_cpp_as_the_lora_moves_the_trained_model(registry, smol_path):
    """Random LoRA weights on every projection: llama.cpp with the written adapter shifts its next-token logits the
    way the PEFT model's own forward pass does (the base is quantised in one and dequantised in the other, so the
    match is close, not exact), and better than with the query/key rows left unpermuted."""
    import llama_cpp
    import torch
    from peft import LoraConfig, get_peft_model

    import ponder.training.gguf_adapter as ga
    from ponder.training.run import export_adapter

    import ponder.training.base_model as bm

    model, tok, info = bm.load("smollm2-135m")
    torch.manual_seed(0)  # before PEFT draws lora_A, so the adapter (and the margin below) is the same every run
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=list(TrainConfig.__dataclass_fields__["target_modules"].default)))
    for n, p in peft.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.05)
    text = "The capital of France is"
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        tuned = peft(ids).logits[0, -1].numpy()
        with peft.disable_adapter():
            base = peft(ids).logits[0, -1].numpy()
    adapter = export_adapter(peft, info, registry / "random.gguf", alpha=16, name="random")

    def llama_logits(lora):
        llm = llama_cpp.Llama(str(smol_path), lora_path=lora, logits_all=True, verbose=False, n_ctx=128)
        try:
            toks = llm.tokenize(text.encode(), add_bos=False)
            assert toks == ids[0].tolist()
            llm.eval(toks)
            return np.array(llm.scores[len(toks) - 1])
        finally:
            llm.close()

    plain = llama_logits(None)
    shifted = np.corrcoef(tuned - base, llama_logits(str(adapter)) - plain)[0, 1]
    original = ga.rope_permute
    try:
        ga.rope_permute = lambda rows, n: rows
        unpermuted = export_adapter(peft, info, registry / "unpermuted.gguf", alpha=16, name="x")
    finally:
        ga.rope_permute = original
    wrong = np.corrcoef(tuned - base, llama_logits(str(unpermuted)) - plain)[0, 1]
    assert shifted > 0.85 and shifted > wrong + 0.03, (shifted, wrong)
