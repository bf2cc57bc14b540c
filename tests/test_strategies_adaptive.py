"""Adaptive compute: stopping rules proved on scripted samples; DeepConf's early stop on the real engine."""

import asyncio
import math

import pytest

from ponder.strategies import run
from ponder.strategies.adaptive import beta_settled, dirichlet_settled
from ponder.testing import Scripted, ScriptedGenerator
from ponder.types import GenerationRequest, Problem, Prompt, SamplingParams

P = Problem("What is x?")


def go(coro):
    return asyncio.run(coro)


def test_beta_criterion_values():
    # P(Bin(a+b+1, 1/2) >= b+1): 3 agreeing -> 15/16, 4 agreeing -> 31/32, a tie -> 1/2
    assert beta_settled([3]) == pytest.approx(15 / 16) and beta_settled([4, 0]) == pytest.approx(31 / 32)
    assert beta_settled([3, 3, 1]) == pytest.approx(0.5)
    assert dirichlet_settled([8, 1], seed=1) > 0.95 > dirichlet_settled([3, 3], seed=1)
    assert dirichlet_settled([8, 1], seed=1) == dirichlet_settled([8, 1], seed=1)


def test_adaptive_majority_stops_once_settled():
    gen = ScriptedGenerator(lambda req, i: "The answer is 7")
    r = go(run("adaptive_majority?batch=2&max_samples=16&threshold=0.95", P, gen))
    # 2 agreeing: 7/8; 4 agreeing: 31/32 >= 0.95 -> two rounds, four samples
    assert [req.n for call in gen.calls for req in call] == [2, 2] and r.answer == "7"
    assert dict(r.extra)["samples"] == 4 and dict(r.extra)["settled_early"]


def test_adaptive_majority_keeps_sampling_while_contested():
    answers = ["1", "2"] * 8
    gen = ScriptedGenerator([f"The answer is {a}" for a in answers])
    r = go(run("adaptive_majority?batch=4&max_samples=12", P, gen))
    assert dict(r.extra)["samples"] == 12 and not dict(r.extra)["settled_early"]


def test_greedy_first_opens_the_vote_with_the_greedy_decode_and_keeps_the_sampled_stream():
    # greedy says 4; the sampled draws (seeds 10, 11, ...) say 5, 5, 5, 5: the greedy decode is one vote among them
    gen = ScriptedGenerator(lambda req, i: "The answer is 4" if req.params.temperature == 0 else "The answer is 5")
    r = go(run("adaptive_majority?batch=2&max_samples=16&greedy_first=true&seed=10", P, gen))
    first = gen.calls[0]
    assert [(q.n, q.params.temperature) for q in first] == [(1, 0.0), (1, 0.7)] and first[1].params.seed == 10
    later = [q for call in gen.calls[1:] for q in call]
    assert [q.params.seed for q in later] == [11, 13, 15] and all(q.params.temperature == 0.7 for q in later)
    # votes (5:4) 1:1 -> 0.5, 3:1 -> 0.8125, 5:1 -> 0.9375, 7:1 -> 0.98 >= 0.95: eight samples
    assert dict(r.extra)["settled"] == [0.5, 0.8125, 0.9375, 0.9805]
    assert r.candidates[0].answer == "4" and r.answer == "5" and dict(r.extra)["samples"] == len(r.candidates) == 8


def test_give_up_stops_a_scattered_vote_and_not_a_converging_one():
    scattered_gen = ScriptedGenerator([f"The answer is {a}" for a in "1234567890"])
    r = go(run("adaptive_majority?batch=2&max_samples=10&give_up_after=4", P, scattered_gen))
    extra = dict(r.extra)
    assert extra["samples"] == 4 and extra["gave_up"] and not extra["settled_early"] and r.stopped_by is None
    # a repeated answer within the first four keeps the vote going (to the cap here: 1,2,1,2,... never settles)
    contested = ScriptedGenerator([f"The answer is {a}" for a in "1212121212"])
    r = go(run("adaptive_majority?batch=2&max_samples=10&give_up_after=4", P, contested))
    assert dict(r.extra)["samples"] == 10 and not dict(r.extra)["gave_up"]
    # unparsed answers never agree: a vote of no answers gives up too
    silent = ScriptedGenerator(lambda req, i: "I do not know")
    r = go(run("adaptive_majority?batch=2&max_samples=10&give_up_after=4", P, silent))
    assert dict(r.extra)["samples"] == 4 and dict(r.extra)["gave_up"] and r.answer is None


def test_give_up_after_a_scattered_greedy_first_round_returns_the_most_confident_answer():
    from ponder.testing import Scripted

    def script(req, i):
        if req.params.temperature == 0:
            return Scripted("The answer is 9", -0.05)
        return Scripted(f"The answer is {req.params.seed + i}", -0.9)
    gen = ScriptedGenerator(script)
    r = go(run("adaptive_majority?batch=4&max_samples=16&greedy_first=true&give_up_after=4&seed=0", P, gen))
    assert dict(r.extra)["gave_up"] and len(r.candidates) == 4 and r.answer == "9"


def test_esc_stops_when_a_window_agrees():
    seq = ["1", "2", "3", "4", "5", "5", "5", "5", "9", "9"]
    gen = ScriptedGenerator([f"The answer is {a}" for a in seq])
    r = go(run("adaptive_majority?criterion=esc&batch=2&window=4&max_samples=10", P, gen))
    assert dict(r.extra)["samples"] == 8 and r.answer == "5"


def test_deepconf_sets_the_threshold_from_warmup_and_drops_unconfident_traces():
    texts = [Scripted("w " * 40 + "The answer is 3", -0.1), Scripted("w " * 40 + "The answer is 3", -0.2),
             Scripted("w " * 40 + "The answer is 8", -2.5), Scripted("w " * 40 + "The answer is 8", -2.5),
             Scripted("w " * 40 + "The answer is 8", -2.5), Scripted("w " * 40 + "The answer is 3", -0.15)]
    gen = ScriptedGenerator(texts)
    r = go(run("deepconf?warmup=2&n=6&keep_percent=90&window=8", P, gen))
    second = gen.calls[1][0].params
    window, threshold = second.confidence_stop
    assert window == 8 and -0.2 <= threshold <= -0.1  # 10th percentile of the warm-up confidences
    extra = dict(r.extra)
    assert extra["stopped_early"] == 3 and extra["tokens_in_stopped_traces"] == 3 * 8
    assert r.answer == "3"  # three unconfident '8's were cut off and do not vote


def test_deepconf_stops_drawing_once_the_confident_vote_agrees():
    """The paper's adaptive sampling: after the warm-up and after each round, the confident traces' weighted vote is
    checked, and no more traces are drawn once the leader holds ``consensus`` of the weight."""
    w = "w " * 40
    # keep 100%: the threshold is the weaker warm-up trace's confidence (-0.1); later traces at -0.05 pass it
    texts = [Scripted(w + "The answer is 3", -0.1), Scripted(w + "The answer is 8", -0.1),    # warm-up: 1 vs 1
             Scripted(w + "The answer is 8", -2.5), Scripted(w + "The answer is 3", -0.05),   # round 1: the 8 is cut
             Scripted(w + "The answer is 3", -0.05), Scripted(w + "The answer is 3", -0.05),  # round 2: 3 votes vs 1
             *[Scripted(w + "The answer is 8", -0.05)] * 10]                                   # never drawn
    gen = ScriptedGenerator(texts)
    r = go(run("deepconf?warmup=2&n=16&batch=2&keep_percent=100&window=8&consensus=0.75&seed=10", P, gen))
    extra = dict(r.extra)
    assert [sum(q.n for q in call) for call in gen.calls] == [2, 2, 2]
    assert [q.params.seed for call in gen.calls[1:] for q in call] == [12, 14]  # round i continues the seed stream
    three, eight = math.exp(-0.1) + 3 * math.exp(-0.05), math.exp(-0.1)  # the vote's weights after round 2
    share = round(three / (three + eight), 4)
    assert extra["traces"] == 6 and extra["settled_early"] and extra["consensus"][0] == 0.5 and extra["consensus"][-1] == share
    assert extra["consensus"][1] < 0.75 <= share
    assert r.answer == "3" and r.stopped_by is None and r.usage.completion_tokens == 5 * 44 + 8


def test_deepconf_consensus_needs_two_confident_votes_and_can_be_switched_off():
    w = "w " * 40
    # keep 10%: only the most confident warm-up trace is above the threshold; one vote is no consensus
    gen = ScriptedGenerator([Scripted(w + "The answer is 3", -0.1), Scripted(w + "The answer is 8", -0.3)]
                            + [Scripted(w + "The answer is 3", -0.05)] * 2)
    r = go(run("deepconf?warmup=2&n=4&batch=1&keep_percent=10&window=8", P, gen))
    assert dict(r.extra)["consensus"] == [0.0, 1.0] and dict(r.extra)["traces"] == 3
    # consensus=none: all n traces, the rest in one call after the warm-up (DeepConf with a fixed budget)
    gen = ScriptedGenerator(lambda req, i: w + "The answer is 3")
    r = go(run("deepconf?warmup=2&n=6&consensus=none&window=8", P, gen))
    assert [sum(q.n for q in call) for call in gen.calls] == [2, 4] and not dict(r.extra)["settled_early"]


def test_confidence_stop_on_the_real_engine(engine):
    p = SamplingParams(temperature=1.0, max_tokens=200, seed=3, ignore_eos=True, confidence_stop=(4, -1e-6))
    [c] = engine.generate_sync([GenerationRequest(Prompt.chat("Tell me a story."), n=3, params=p)])
    assert {s.finish_reason for s in c.samples} == {"low_confidence"} and all(s.n_tokens == 4 for s in c.samples)


def test_the_replayed_confidence_stop_cuts_where_the_engine_cuts(smol_path):
    """confidence_stop_at (how the evaluator cuts stored draws for DeepConf) against the engine itself: a draw
    decoded in full, then the same draw decoded with a confidence stop, each on a fresh engine, one sequence."""
    from ponder.backends.llamacpp import EngineConfig, LlamaCppGenerator
    from ponder.evaluation.replay import confidence_stop_at

    def decode(seed, stop=None):
        with LlamaCppGenerator(smol_path, EngineConfig(n_ctx=2048, n_slots=4)) as gen:
            p = SamplingParams(temperature=1.0, max_tokens=64, seed=seed, logprobs=0, confidence_stop=stop)
            [c] = go(gen.generate([GenerationRequest(Prompt.chat("Explain why the sky is blue."), n=1, params=p)]))
        return c.samples[0]

    cut_seen = 0
    for seed in (1, 2, 3):
        full = decode(seed)
        lps = [t.logprob for t in full.logprobs]
        threshold = sorted(sum(lps[i:i + 8]) / 8 for i in range(len(lps) - 7))[len(lps) // 4]  # cuts about a quarter in
        predicted = confidence_stop_at(lps, 8, threshold)
        stopped = decode(seed, (8, threshold))
        assert stopped.n_tokens == (predicted or full.n_tokens)
        assert stopped.finish_reason == ("low_confidence" if predicted else full.finish_reason)
        assert stopped.token_ids == full.token_ids[: stopped.n_tokens]
        cut_seen += predicted is not None
    assert cut_seen == 3


def test_deepconf_saves_real_tokens_on_smollm2(smol_path):
    from ponder.backends.llamacpp import EngineConfig, LlamaCppGenerator

    with LlamaCppGenerator(smol_path, EngineConfig(n_ctx=8192, n_slots=32)) as gen:  # fresh: reproducible
        r = go(run("deepconf?warmup=4&n=12&keep_percent=50&window=8&max_tokens=96&seed=5&consensus=none", Problem("What is 12 * 7?"), gen))
    extra = dict(r.extra)
    stopped = [c for c in r.candidates if c.finish_reason == "low_confidence"]
    # half the warm-up traces sit below the threshold: some later traces are cut while decoding
    assert extra["stopped_early"] == len(stopped) >= 1
    assert all(c.tokens < 96 for c in stopped)
    assert r.usage.completion_tokens == sum(c.tokens for c in r.candidates)


def test_deepconf_consensus_rounds_on_smollm2(engine):
    """On the real engine: rounds after the warm-up continue the seed stream, each round is one batched call of
    confidence-stopped traces, and the run ends either at consensus (the last share at or above it) or at n."""
    from ponder.testing import RecordingGenerator

    gen = RecordingGenerator(engine)
    r = go(run("deepconf?warmup=2&n=8&batch=2&keep_percent=50&window=8&max_tokens=64&seed=3&consensus=0.6",
               Problem("What is 12 * 7? Answer with the number."), gen))
    extra = dict(r.extra)
    sizes = [sum(q.n for q in call) for call in gen.calls]
    assert sizes[0] == 2 and all(n == 2 for n in sizes[1:]) and sum(sizes) == extra["traces"] == len(r.candidates) <= 8
    assert [call[0].params.seed for call in gen.calls] == [3 + 2 * i for i in range(len(sizes))]
    assert all(call[0].params.confidence_stop is not None for call in gen.calls[1:])
    assert len(extra["consensus"]) == len(sizes)
    assert extra["settled_early"] == (extra["consensus"][-1] >= 0.6)
    assert all(share < 0.6 for share in extra["consensus"][:-1])  # no round was drawn after consensus
    assert extra["settled_early"] or extra["traces"] == 8
    assert r.usage.completion_tokens == sum(c.tokens for c in r.candidates)


def test_auto_maps_effort_to_caps_and_reports_difficulty():
    gen = ScriptedGenerator(lambda req, i: "The answer is 7")
    r = go(run("auto?effort=high", P, gen))
    assert r.strategy == "auto" and r.answer == "7" and dict(r.extra)["difficulty"] == 0.0
    assert [req.n for call in gen.calls for req in call] == [4]  # 4 agreeing: settled at once
    contested = ScriptedGenerator([f"The answer is {i % 3}" for i in range(40)])
    r = go(run("auto?effort=low", P, contested))
    assert dict(r.extra)["samples"] == 4 and dict(r.extra)["difficulty"] > 0.4


def test_cascade_escalates_only_when_the_small_model_is_unsure():
    from ponder.strategies.cascade import cascade

    sure, large = ScriptedGenerator(lambda r, i: "The answer is 5"), ScriptedGenerator(lambda r, i: "The answer is 6")
    r = go(cascade(P, sure, large, small_spec="majority?n=4", min_agreement=0.75))
    assert r.answer == "5" and not dict(r.extra)["escalated"] and large.calls == []
    unsure = ScriptedGenerator([f"The answer is {a}" for a in "1212"])
    r = go(cascade(P, unsure, large, small_spec="majority?n=4", large_spec="greedy", min_agreement=0.75))
    extra = dict(r.extra)
    assert r.answer == "6" and extra["escalated"] and extra["small_agreement"] == 0.5 and len(large.calls) == 1
    assert len(r.candidates) == 5 and r.candidates[r.chosen].answer == "6"


def test_cascade_from_the_embedded_engine_to_an_http_server(engine, llama_server):
    from ponder.backends.openai_http import OpenAIHTTPGenerator
    from ponder.strategies.cascade import cascade

    large = OpenAIHTTPGenerator(llama_server.url, model="smol")
    r = go(cascade(Problem("What is 2 + 9?"), engine, large, small_spec="majority?n=3&max_tokens=32&seed=2",
                   large_spec="greedy?max_tokens=32", min_agreement=1.01))  # an impossible bar: always escalate
    assert dict(r.extra)["escalated"] and r.usage.requests >= 2
    assert r.usage.completion_tokens == sum(c.tokens for c in r.candidates)


def test_cascade_counts_the_small_run_against_the_budget():
    from ponder.strategies.cascade import cascade
    from ponder.types import Budget

    unsure = ScriptedGenerator([f"The answer is {a}" for a in "1212"])
    large = ScriptedGenerator(lambda r, i: "The answer is 6")
    r = go(cascade(P, unsure, large, small_spec="majority?n=4", large_spec="majority?n=4", budget=Budget(max_samples=5)))
    assert [req.n for call in large.calls for req in call] == [1] and r.answer == "6"


def test_auto_policy_runs_greedy_after_the_probe_and_majority_reuses_it(tmp_path):
    from ponder.evaluation.policy_fit import Bin, Policy

    path = Policy(2, 0.0, (Bin(0.75, "majority", 4, 1, 0.5, 100), Bin(1.0 + 1e-9, "greedy", 1, 1, 0.9, 10)), "t").save(tmp_path / "p.json")
    agree = ScriptedGenerator(lambda req, i: "The answer is 7" if req.params.temperature else "The answer is 8")
    r = go(run(f"auto?policy={path}&seed=1", P, agree))
    # the probe agrees (2/2): the policy says greedy, which runs at temperature 0 after the probe
    assert dict(r.extra)["policy_choice"] == "greedy@1" and r.answer == "8" and len(r.candidates) == 3
    assert agree.calls[-1][0].params.temperature == 0
    split = ScriptedGenerator(lambda req, i: f"The answer is {i % 2}")
    r = go(run(f"auto?policy={path}&seed=1", P, split))
    # a split probe: majority@4 draws 2 more, seeded after the probe's, and votes over all 4
    assert dict(r.extra)["policy_choice"] == "majority@4" and len(r.candidates) == 4
    assert [c[0].params.seed for c in split.calls] == [1, 3]


def test_the_shipped_default_policy_loads_names_its_data_and_runs():
    from ponder.evaluation.policy_fit import Policy

    policy = Policy.load("default")
    assert "ponder policy fit scaling" in policy.fitted_on and "first 50 items" in policy.fitted_on  # written by bench/adaptive.py
    assert policy.probe >= 1 and policy.bins
    edges = [b.max_agreement for b in policy.bins]
    assert edges == sorted(edges) and edges[-1] > 1.0  # every agreement falls in a bin
    split = ScriptedGenerator(lambda req, i: f"The answer is {i}")
    r = go(run("auto?policy=default&seed=1", P, split))
    extra = dict(r.extra)
    assert "policy_choice" in extra and len(r.candidates) >= policy.probe
