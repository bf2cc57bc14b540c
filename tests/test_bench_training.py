"""bench/training.py's bookkeeping: the paired gain of a trained model over the untrained one, and a stage not run
this time keeping what an earlier run measured."""

import json

from bench.training import paired_gain, previous_details


def test_the_paired_gain_counts_items_won_and_lost_and_brackets_the_difference():
    base = {f"i{k}": float(k % 2) for k in range(40)}  # right on the odd items
    trained = {**base, "i0": 1.0, "i2": 1.0, "i4": 1.0, "i1": 0.0}  # three won, one lost
    g = paired_gain(trained, base, seed=0)
    assert (g["won"], g["lost"]) == (3, 1)
    assert g["difference"] == 0.05 and g["ci"][0] <= 0.05 <= g["ci"][1] and g["ci"][0] < 0 < g["ci"][1]
    assert paired_gain(base, base, seed=0) == {"difference": 0.0, "ci": [0.0, 0.0], "won": 0, "lost": 0}


def test_an_earlier_runs_details_are_kept_and_a_missing_or_broken_file_gives_none(tmp_path):
    assert previous_details(tmp_path / "none.json") == {}
    (tmp_path / "broken.json").write_text("{not json")
    assert previous_details(tmp_path / "broken.json") == {}
    (tmp_path / "t.json").write_text(json.dumps({"details": {"judged": {"m": {"1": {"accuracy": 0.5}}}, "grpo": {}}}))
    assert previous_details(tmp_path / "t.json")["judged"]["m"]["1"]["accuracy"] == 0.5



def test_the_grpo_curve_is_read_once_per_step_and_drawn(tmp_path):
    from bench.training import draw_grpo, grpo_curve

    log = tmp_path / "log.jsonl"
    lines = [{"step": s, "reward": s / 40, "rewards/accuracy_reward/mean": s / 80, "rewards/format_reward/mean": s / 40,
              "completions/mean_length": 64 - s} for s in range(1, 31)]
    lines.insert(10, {"step": 5, "reward": 0.9, "rewards/accuracy_reward/mean": 0.0, "rewards/format_reward/mean": 0.9})  # resumed
    lines.append({"step": 30, "eval_reward": 0.5})  # an evaluation, not a training step
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    curve = grpo_curve(log)
    assert [c["step"] for c in curve] == list(range(1, 31))
    assert curve[4] == {"step": 5, "reward": 0.9, "accuracy": 0.0, "format": 0.9}  # the later record of step 5 wins
    out = draw_grpo(curve, 0.1, 0.3, "rg:basic_arithmetic", tmp_path / "t.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert draw_grpo([], 0.1, 0.3, "t", tmp_path / "u.png") is None and not (tmp_path / "u.png").exists()
    assert grpo_curve(tmp_path / "missing.jsonl") == []
