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

