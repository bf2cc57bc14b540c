"""bench/verifier.py's selection arithmetic on paths whose rights and wrongs are known: the plain vote, a scorer's
weighted vote and best program, pass@k, each over the first k programs of an item."""

import bench.verifier as verifier


def path(item, idx, key, right, confidence=-0.5):
    return {"item": item, "idx": idx, "text": f"print({key})", "answer": key, "key": key, "tokens": 5, "finish": "eos",
            "confidence": confidence, "correct": 1.0 if right else 0.0}


def test_selectors_over_the_first_k_programs():
    # item a: the wrong answer 7 outvotes the right 5 three to two; a scorer that sees it puts 5 first
    a = [path("a", 0, "7", False), path("a", 1, "5", True), path("a", 2, "7", False), path("a", 3, "5", True), path("a", 4, "7", False)]
    # item b: the right answer wins the plain vote; one program abstains (printed nothing)
    b = [path("b", 0, "3", True), path("b", 1, None, False), path("b", 2, "3", True), path("b", 3, "4", False), path("b", 4, "3", True)]
    paths = a + b
    seeing = [0.1, 0.9, 0.1, 0.9, 0.1] + [0.8, 0.99, 0.8, 0.2, 0.8]  # the abstention's high score must not count
    blind = [0.5] * 10
    rows, outcome = verifier.selections(paths, {"probe": seeing, "blind": blind})
    acc = {(r["selector"], r["budget"]): r["accuracy"] for r in rows}
    assert acc[("majority", 16)] == 0.5 and acc[("pass", 16)] == 1.0  # budgets past an item's paths take them all
    assert acc[("probe_weighted", 16)] == 1.0 and acc[("probe_best_of_n", 16)] == 1.0
    assert acc[("blind_weighted", 16)] == acc[("majority", 16)]  # equal weights are the plain vote
    assert acc[("majority", 1)] == 0.5 and acc[("pass", 2)] == 1.0  # k = 1: item a's first program is wrong
    assert outcome["probe_weighted"][4] == [1.0, 1.0]
    assert all(r["ci_low"] <= r["accuracy"] <= r["ci_high"] for r in rows)
