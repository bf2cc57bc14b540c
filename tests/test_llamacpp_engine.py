"""The embedded llama.cpp backend, end to end on the real SmolLM2 model."""

import asyncio
import threading
import time

import numpy as np
import pytest

from ponder.backends.llamacpp import EngineConfig, LlamaCppGenerator
from ponder.errors import ContextOverflow, InvalidRequest
from ponder.protocols import Generator
from ponder.types import GenerationRequest, Prompt, SamplingParams

Q = Prompt.chat("Write one short sentence about the sea.")


def one(gen, **kw):
    params = kw.pop("params", None) or SamplingParams(**{k: kw.pop(k) for k in list(kw) if k in SamplingParams.__dataclass_fields__})
    [c] = gen.generate_sync([GenerationRequest(kw.pop("prompt", Q), params=params, **kw)])
    return c


def test_is_a_generator(engine):
    assert isinstance(engine, Generator)


def test_batched_samples_are_distinct_and_reproducible_by_seed(smol_path):
    """Same request, same seed, same engine state: the same samples (two fresh engines here). On a warm engine the
    second run would copy the prompt's KV from cache and evaluate only its last token, in a batch of another shape;
    the logits then differ in the last bits and a near-tie can flip a token later (as in vLLM with prefix caching)."""
    runs = []
    for seed in (11, 11, 12):
        with LlamaCppGenerator(smol_path, EngineConfig(n_ctx=4096, n_slots=8)) as gen:
            runs.append(one(gen, n=6, temperature=1.0, max_tokens=24, seed=seed))
    a, b, c = runs
    texts = [s.text for s in a.samples]
    assert len(set(texts)) >= 5, texts
    assert texts == [s.text for s in b.samples]
    assert texts != [s.text for s in c.samples]
    # sample i is seeded seed + i: the second sample of seed 11 and the first of seed 12 draw the same random
    # stream; they start alike (their rows sit at other batch positions, so they too may drift later)
    x, y = a.samples[1].token_ids, c.samples[0].token_ids
    assert x[:4] == y[:4]
    assert a.usage.completion_tokens == sum(s.n_tokens for s in a.samples)


def test_prompt_is_evaluated_once_for_n_samples(engine):
    prompt = Prompt.chat("Count from one to five in words, please. (evaluated once)")
    before = engine.stats.prompt_tokens_evaluated
    c = one(engine, prompt=prompt, n=8, temperature=0.8, max_tokens=8, seed=1)
    n_prompt = c.usage.prompt_tokens
    assert engine.stats.prompt_tokens_evaluated - before == n_prompt - c.usage.cached_prompt_tokens
    assert len(c.samples) == 8


def test_continuation_from_a_prefix_follows_the_full_run_and_reuses_its_kv(engine):
    """Greedy: continuing from the first k generated tokens gives the rest of the full greedy text.

    The full run decoded the prefix one token per step; the continuation evaluates it as part of a prompt batch.
    The logits then agree only to the last bits (how much depends on the CPU's kernels), so where the full run's
    top two tokens were nearly tied the continuation may take the other one. We require the texts to agree up to
    such a near tie, and the continuation to be a greedy run itself (each token its own top-1).
    """
    prompt = Prompt.chat("List three colours of the rainbow.")
    full = one(engine, prompt=prompt, temperature=0, max_tokens=40, logprobs=2).samples[0]
    model = engine.engine.model
    k = 12
    prefix = model.detokenize(list(full.token_ids[:k]))
    base = model.encode_prompt(prompt)
    assert model.encode_prompt(prompt, prefix)[len(base):] == list(full.token_ids[:k]), "prefix must re-tokenize identically"
    c = one(engine, prompt=prompt, prefix=prefix, temperature=0, max_tokens=40 - k, logprobs=2)
    cont = c.samples[0]
    rest, got = list(full.token_ids[k:]), list(cont.token_ids)
    j = next((i for i, (a, b) in enumerate(zip(rest, got)) if a != b), None)
    if j is None:
        assert prefix + cont.text == full.text
    else:
        (_, first), (_, second) = full.logprobs[k + j].top
        assert first - second < 0.3, f"diverged at token {j} of the continuation where the full run was sure ({first - second:.3f} nats)"
    assert all(lp.top[0][0] == lp.token for lp in cont.logprobs)
    # everything but the last prefix token came from the cache: the prompt and k - 1 generated tokens
    assert c.usage.prompt_tokens == len(base) + k
    assert c.usage.cached_prompt_tokens == len(base) + k - 1


def test_branches_from_one_prefix_share_it_and_beam_prompts_decode_together(engine):
    prompt = Prompt.chat("Solve step by step: 12 + 30 = ?")
    before = engine.stats.decode_calls
    reqs = [GenerationRequest(prompt, n=3, prefix=p, params=SamplingParams(temperature=0.9, max_tokens=10, seed=5))
            for p in ("Step 1:", "First,", "We add")]
    outs = engine.generate_sync(reqs)
    assert [len(c.samples) for c in outs] == [3, 3, 3]
    # three prompts x three branches x 10 tokens, decoded together: far fewer decode calls than 90
    assert engine.stats.decode_calls - before <= 14
    # the chat prompt was evaluated at most once for all three prefixes
    assert sum(c.usage.cached_prompt_tokens for c in outs) >= 2 * (outs[0].usage.prompt_tokens - 6)


def test_stop_strings_cut_the_text_and_say_so(engine, smol_path):
    """Compared on two fresh engines: a warm engine evaluates a cached prompt in a differently shaped batch, so
    even a greedy decode may take another path there (it did, once in two runs on a loaded machine)."""
    prompt = Prompt.chat("Describe a forest in two sentences.")

    def fresh(**kw):
        gen = LlamaCppGenerator(smol_path, EngineConfig(n_ctx=1024, n_slots=2), name="fresh")
        try:
            return one(gen, prompt=prompt, temperature=0, max_tokens=48, **kw).samples[0]
        finally:
            gen.close()

    free = fresh().text
    words = free.split()
    assert len(words) > 6, free
    stop = words[4]  # a word in the middle; may span tokens
    s = fresh(stop=("NEVER-SEEN", stop))
    assert s.finish_reason == "stop" and s.text == free[: free.index(stop)]
    long = one(engine, temperature=0.9, max_tokens=7, seed=3, ignore_eos=True).samples[0]
    assert long.finish_reason == "length" and long.n_tokens == 7


def test_logprobs_are_normalised_and_top_k_is_sorted(engine):
    c = one(engine, temperature=0, max_tokens=12, logprobs=3)
    s = c.samples[0]
    assert len(s.logprobs) == s.n_tokens
    for lp in s.logprobs:
        assert lp.logprob <= 1e-6
        assert len(lp.top) == 3 and [v for _, v in lp.top] == sorted((v for _, v in lp.top), reverse=True)
        assert lp.top[0][0] == lp.token and lp.top[0][1] == pytest.approx(lp.logprob)  # greedy picks the argmax
    assert "".join(lp.token for lp in s.logprobs) == s.text
    none = one(engine, temperature=0, max_tokens=4).samples[0]
    assert none.logprobs is None


def test_deadline_ends_samples_with_what_they_have(engine):
    c = one(engine, n=2, temperature=0.9, max_tokens=4000, ignore_eos=True, seed=1, deadline=time.monotonic() + 1.0)
    assert {s.finish_reason for s in c.samples} == {"deadline"}
    assert all(0 < s.n_tokens < 4000 for s in c.samples)


def test_cancel_stops_decoding_and_frees_slots(engine):
    req = GenerationRequest(Q, n=4, params=SamplingParams(temperature=0.9, max_tokens=4000, ignore_eos=True))
    handle = engine.engine.submit(req)
    time.sleep(0.5)
    handle.cancel()
    t = time.monotonic()
    while not handle.future.done() and time.monotonic() - t < 10:
        time.sleep(0.05)
    assert handle.future.cancelled()
    assert one(engine, temperature=0, max_tokens=4).samples[0].text  # the engine still serves


def test_async_callers_share_the_engine(engine):
    async def main():
        reqs = [[GenerationRequest(Prompt.chat(f"Say the number {i}."), n=2, params=SamplingParams(max_tokens=6, seed=i))]
                for i in range(4)]
        return await asyncio.gather(*(engine.generate(r) for r in reqs))

    outs = asyncio.run(main())
    assert [len(o[0].samples) for o in outs] == [2, 2, 2, 2]


def test_bad_requests_fail_alone_and_clearly(engine, smol_path):
    with pytest.raises(InvalidRequest, match="exceeds this engine's n_slots=32"):
        one(engine, n=33)
    huge = Prompt.raw("word " * 9000)
    with pytest.raises(ContextOverflow, match="context holds"):
        one(engine, prompt=huge, max_tokens=4)
    assert one(engine, temperature=0, max_tokens=3).samples[0].n_tokens > 0


def test_kv_full_fails_the_newest_request_not_the_engine(smol_path):
    gen = LlamaCppGenerator(smol_path, EngineConfig(n_ctx=512, n_slots=8, n_batch=512))
    try:
        params = SamplingParams(temperature=0.9, max_tokens=400, ignore_eos=True, seed=1)
        with pytest.raises(ContextOverflow, match="KV cache"):
            gen.generate_sync([GenerationRequest(Q, n=4, params=params)])
        c = gen.generate_sync([GenerationRequest(Q, n=1, params=SamplingParams(temperature=0, max_tokens=8))])[0]
        assert c.samples[0].n_tokens > 0
    finally:
        gen.close()


def test_submitting_from_many_threads(engine):
    results = []

    def worker(i):
        results.append(one(engine, prompt=Prompt.chat(f"Name animal number {i}."), n=2, max_tokens=5, seed=i))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4


def test_gpu_layers_reach_the_model_and_a_cpu_build_says_it_runs_on_the_cpu(smol_path, capfd):
    import llama_cpp

    gen = LlamaCppGenerator(smol_path, EngineConfig(n_ctx=512, n_slots=1, n_gpu_layers=-1), name="gpu?")
    try:
        model = gen.engine.model
        if llama_cpp.llama_supports_gpu_offload():  # a GPU build: every layer goes
            assert model.n_gpu_layers == -1
        else:
            assert model.n_gpu_layers == 0 and "no GPU backend" in capfd.readouterr().err
        assert one(gen, temperature=0, max_tokens=4).samples[0].n_tokens >= 1  # and it still generates
    finally:
        gen.close()


def test_a_path_just_generated_is_read_from_its_cached_slot(smol_path):
    """Reading the hidden state of a path the engine just generated, with a program's output block appended,
    evaluates only the appended tokens (the prompt and the path come from the path's slot), and the state equals a
    fresh read of the whole sequence by a second context (up to float rounding: other batch shapes)."""
    from ponder.backends.hidden_states import HiddenStateReader, shared_prefix
    from bench.probe_reads import cosine

    prompt = Prompt.chat("Write a Python program that prints 14 * 3 + 23 * 2. (read after generation)")
    with LlamaCppGenerator(smol_path, EngineConfig(n_ctx=4096, n_slots=8)) as gen:
        c = one(gen, prompt=prompt, n=4, temperature=0.8, max_tokens=40, seed=3)
        texts = [s.text + "\n```output\n88\n```" for s in c.samples]
        model = gen.engine.model
        seqs = [model.encode_prompt(prompt, t) for t in texts]
        prompt_tokens = model.encode_prompt(prompt)
        n_prompt = len(prompt_tokens)
        evaluated = gen.stats.prompt_tokens_evaluated
        read = asyncio.run(gen.read_hidden_states([prompt] * 4, texts))
        evaluated = gen.stats.prompt_tokens_evaluated - evaluated
        # what the path's slot holds (the prompt, and the path but its last token, sampled and never evaluated)
        # is reused as far as the text, tokenised afresh, agrees with it: a sampled path need not be the canonical
        # tokenisation of its own text (SmolLM2 on an AMD EPYC sampled "\n   " + " for" here), and the
        # appended output block joins the path's end
        held = [prompt_tokens + list(s.token_ids[:-1]) for s in c.samples]
        agree = [min(shared_prefix(h, q), len(q) - 1) for h, q in zip(held, seqs, strict=True)]
        assert read.tokens == sum(len(s) for s in seqs)
        assert read.reused >= sum(agree) and sum(agree) >= sum(n_prompt + s.n_tokens // 2 for s in c.samples), (read.reused, agree)
        assert evaluated == read.tokens - read.reused
        again = asyncio.run(gen.read_hidden_states([prompt] * 4, texts))  # now the output blocks are cached too
        assert again.reused == again.tokens - 4  # only each last token, which must be evaluated to be read
    reader = HiddenStateReader(smol_path, n_ctx=1024, n_threads=1)
    try:
        fresh = reader.read(seqs)
    finally:
        reader.close()
    for ours, theirs, twice in zip(read.states, fresh.states, again.states, strict=True):
        assert cosine(ours, theirs) > 0.999 and cosine(twice, theirs) > 0.999
        assert abs(np.linalg.norm(ours) / np.linalg.norm(theirs) - 1) < 0.01


def test_reads_share_decode_steps_with_generation_and_fail_alone(engine):
    """Reads submitted beside a generating request finish with it (same engine steps); a read of an empty
    sequence is refused on its own; reading nothing returns no rows."""

    async def both():
        gen_task = engine.generate([GenerationRequest(Q, n=3, params=SamplingParams(temperature=0.7, max_tokens=24, seed=5))])
        reads = engine.read_hidden_states([Prompt.chat(f"Question {i}: what is {i} + {i}?") for i in range(5)],
                                          [f"It is {2 * i}." for i in range(5)])
        return await asyncio.gather(gen_task, reads)

    [c], read = asyncio.run(both())
    assert len(c.samples) == 3 and read.states.shape == (5, engine.engine.model.n_embd)
    assert len({tuple(np.round(r, 4)) for r in read.states}) == 5  # five sequences, five states
    with pytest.raises(InvalidRequest, match="empty"):
        engine.engine.submit_read([])
    empty = asyncio.run(engine.read_hidden_states([], []))
    assert empty.states.shape == (0, engine.engine.model.n_embd) and empty.tokens == 0
