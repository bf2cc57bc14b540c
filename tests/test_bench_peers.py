"""bench/peers.py's own pieces: the upstream's counters read from its Prometheus text, and the its_hub runner's
answer projection (the smallest fix to its self-consistency, which votes on whole texts as shipped)."""

import doctest
import importlib.util
from pathlib import Path

import bench.peers as peers

ROOT = Path(__file__).resolve().parent.parent


def test_the_upstream_counters_are_read_from_its_metrics():
    assert doctest.testmod(peers).failed == 0
    text = ('ponder_tokens_total{kind="prompt",strategy="passthrough"} 10.0\n'
            'ponder_tokens_total{kind="completion",strategy="passthrough"} 5.0\n'
            'ponder_requests_total{status="error",strategy="passthrough"} 9.0\n')
    assert peers.passthrough_counters(text) == {"completion": 5.0, "prompt": 10.0, "requests": 0.0}


def test_the_runner_votes_on_the_stated_answer_with_the_fix(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench/peer_runners"))  # a runner runs as a script: its folder is on its path
    spec = importlib.util.spec_from_file_location("its_hub_runner", ROOT / "bench/peer_runners/its_hub_runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)  # imports only the standard library at module level: its_hub is imported in main()
    assert runner.answer_projection("14 * 3 = 42, 42 + 46 = 88. The answer is 88.") == "88"
    assert runner.answer_projection("so 1,200 + 5 = 1,205 in total") == "1205"
    assert runner.answer_projection("The answer is: $-3") == "-3"
    assert runner.answer_projection("no numbers") == "no numbers"


def test_the_optillm_runner_votes_on_stated_answers_with_the_fix(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench/peer_runners"))
    spec = importlib.util.spec_from_file_location("optillm_runner", ROOT / "bench/peer_runners/optillm_runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)  # the standard library only at module level: optillm is imported in run()
    texts = ["42 + 46 = 98. The answer is 98.", "so 88 in all. The answer is 88", "It made 88 dollars."]
    assert runner.voted_on_answers(texts) == texts[1]  # 88 twice (stated, then the last number) beats 98 once
    assert runner.voted_on_answers([]) == ""
    assert set(runner.__doc__.split("``")[1::2]) >= {"self_consistency", "self_consistency_answer", "bon", "moa", "re2", "cot_reflection"}
