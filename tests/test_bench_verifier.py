"""bench/verifier.py's selection arithmetic on paths whose rights and wrongs are known: the plain vote, a scorer's
weighted vote and best program, pass@k, each over the first k programs of an item."""

import pytest

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


def test_roc_points_run_from_nothing_accepted_to_everything():
    fpr, tpr = verifier.roc_points([0.9, 0.9, 0.5, 0.2], [1, 0, 1, 0])
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (fpr[1], tpr[1]) == (0.5, 0.5)  # the tied top scores are one threshold: one right and one wrong at once
    assert all(a <= b for a, b in zip(fpr, fpr[1:])) and all(a <= b for a, b in zip(tpr, tpr[1:]))


def test_the_figure_is_drawn(tmp_path):
    paths = [path("a", 0, "7", False), path("a", 1, "5", True), path("b", 0, "3", True), path("b", 1, "4", False)]
    labels = [p["correct"] for p in paths]
    scores = {"probe": [0.2, 0.8, 0.7, 0.4], "confidence": [0.5, 0.4, 0.6, 0.3]}
    rows, _ = verifier.selections(paths, scores)
    aurocs = {name: {"auroc": verifier.auroc(s, labels)} for name, s in scores.items()}
    out = verifier.draw_figure(scores, labels, aurocs, rows, tmp_path / "v.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize("model", sorted(verifier.SETUPS))
def test_a_retrained_probe_drops_the_phases_it_voted_and_searched_in(tmp_path, model):
    from dataclasses import replace

    import numpy as np

    from bench.scaling import PHASE_SCORERS, PHASES, RUN, spec
    from ponder.evaluation.runner import stored_params
    from ponder.evaluation.store import Key, Store
    from ponder.verifier.probe import fit

    setup = replace(verifier.SETUPS[model], probe_file=tmp_path / "probe.json", shipped=tmp_path / "shipped.json")
    store = Store(tmp_path / "s.sqlite")
    keys = [stored_params(spec(PHASES[ph][1][0]), PHASE_SCORERS[ph]) for ph in setup.phases_using_probe]
    row = {"answer": "5", "reference": "5", "correct": 1.0, "prompt_tokens": 1, "cached_prompt_tokens": 0, "completion_tokens": 1,
           "seconds": 0.1, "n_candidates": 1, "n_correct": 1, "stopped_by": None}
    other = Key(RUN, "t", "i", "m", "majority", "{}", 1)

    def put():
        for strategy, params in keys:
            store.put_result(Key(RUN, "t", "i", "m", strategy, params, 1), 8, row)
        store.put_result(other, 8, row)

    def phase_rows():
        return [r for r in store.results(RUN) if (r["strategy"], r["params"]) in keys]

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), np.array([0.0, 1.0] * 20)
    verifier.save_probe(store, fit(x, y, model_sha256="a" * 64), setup)  # a first probe: nothing of it was stored before
    put()
    verifier.save_probe(store, fit(x, y, model_sha256="a" * 64, trained_on="the same fit, other notes"), setup)
    assert len(phase_rows()) == len(keys) == (2 if setup.beam_phase else 1)  # the same numbers: its rows still hold
    verifier.save_probe(store, fit(x, 1.0 - y, model_sha256="a" * 64), setup)
    assert phase_rows() == [] and len(store.results(RUN)) == 1  # only the phases that used the probe went
    assert (tmp_path / "shipped.json").read_text() == (tmp_path / "probe.json").read_text()


def test_each_model_has_its_own_probe_phase_and_files():
    setups = list(verifier.SETUPS.values())
    assert len({s.probe_phase for s in setups}) == len({s.probe_file for s in setups}) == len({s.shipped for s in setups}) == len(setups)
    for s in setups:
        from bench.scaling import PHASES, PHASE_SCORERS

        assert PHASES[s.probe_phase][0] == s.model and s.probe_file.name in PHASE_SCORERS[s.probe_phase]
        draws = PHASES[s.probe_phase - 1]  # the draws it is judged on: the same model, as many programs an item
        assert draws[0] == s.model and max(draws[2]) == s.test_programs and draws[2] == s.budgets
        if s.beam_phase:  # beam search over programs guided by the same probe, on the same model
            assert PHASES[s.beam_phase][0] == s.model and PHASE_SCORERS[s.beam_phase] == PHASE_SCORERS[s.probe_phase]
            assert all(x.startswith("beam?prompt=pal") for x in PHASES[s.beam_phase][1])


@pytest.mark.parametrize("model", sorted(verifier.SETUPS))
def test_the_shipped_probe_is_the_one_measured(model):
    from ponder.verifier.probe import Probe

    setup = verifier.SETUPS[model]
    assert Probe.load(setup.shipped).fingerprint() == Probe.load(setup.probe_file).fingerprint()


@pytest.mark.parametrize("model", sorted(verifier.SETUPS))
def test_the_published_figures_describe_the_probe_committed_beside_them(model):
    """verifier.json's figures are those of the probe file committed with it: the probe's own record of what it was
    trained on and how it did on its held-out training quarter matches the published one (a probe trained on the
    labels before a checker fix, 526 right programs, beside figures of one trained after it, 506, fails here), and
    so does its fingerprint where the result records it."""
    import json

    from ponder.verifier.probe import Probe

    setup = verifier.SETUPS[model]
    published = json.loads((verifier.RESULTS / f"{setup.result}.json").read_text())
    probe = Probe.load(setup.probe_file)
    assert (published["training_paths"], published["training_right"], published["training_items"]) == \
        (probe.metrics["paths"], probe.metrics["right"], probe.metrics["items"])
    assert published["probe_heldout_auroc_in_training"] == pytest.approx(probe.metrics["heldout_auroc"])
    if "probe_fingerprint" in published["details"]:
        assert published["details"]["probe_fingerprint"] == probe.fingerprint()


def test_beam_only_rewrites_the_beam_figures_and_keeps_every_other_measurement(tmp_path, monkeypatch):
    """``--beam-only`` after phase 17 ran further: the beam keys come from the store's rows, every other figure stays
    as measured (with the commit, date and machine it was measured on), and a result that describes another probe
    than the one beside it is refused: its figures would need the whole benchmark."""
    import json
    from dataclasses import replace

    import numpy as np

    import bench.common
    from ponder.verifier.probe import Probe, fit

    monkeypatch.setattr(verifier, "RESULTS", tmp_path)
    monkeypatch.setattr(bench.common, "RESULTS", tmp_path)
    setup = replace(verifier.SETUPS["qwen2.5-coder-0.5b"], probe_file=tmp_path / "verifier.probe.json")
    rng = np.random.default_rng(0)
    fit(rng.normal(size=(40, 3)), np.array([0.0, 1.0] * 20), model_sha256="a" * 64).save(setup.probe_file)
    probe = Probe.load(setup.probe_file)  # as saved (its weights as the file holds them)
    record = {"benchmark": "verifier", "probe_auroc": 0.85, "gap_closed": 0.21, "probe_beam_accuracy": None,
              "probe_beam_width": None, "models": [], "seeds": [2024, 7], "commit": "abc", "date": "then",
              "machine": {"cpus": 2, "cpu": "old"}, "details": {"probe_fingerprint": probe.fingerprint(), "rows": [1, 2]}}
    (tmp_path / "verifier.json").write_text(json.dumps(record))
    beam = {"strategy": "beam?prompt=pal", "ci_low": 0.3, "ci_high": 0.5, "any_correct": 0.6, "completion_tokens": 900,
            "prompt_tokens": 3000, "seconds": 40.0}
    monkeypatch.setattr(verifier, "beam_rows", lambda s, items: [beam | {"budget": 4, "accuracy": 0.38},
                                                                beam | {"budget": 8, "accuracy": 0.41}])
    out = json.loads(verifier.refresh_beam(setup, 100).read_text())
    assert (out["probe_beam_accuracy"], out["probe_beam_width"]) == (0.41, 8)
    assert (out["probe_auroc"], out["gap_closed"], out["details"]["rows"]) == (0.85, 0.21, [1, 2])
    assert [r["budget"] for r in out["details"]["probe_beam"]] == [4, 8] and "100 items" in out["details"]["probe_beam_note"]
    assert out["details"]["measured"] == {"commit": "abc", "date": "then", "machine": {"cpus": 2, "cpu": "old"}}
    again = json.loads(verifier.refresh_beam(setup, 100).read_text())  # the first measurement is kept, not this one
    assert again["details"]["measured"]["commit"] == "abc"
    fit(rng.normal(size=(40, 3)), np.array([1.0, 0.0] * 20), model_sha256="a" * 64).save(setup.probe_file)
    with pytest.raises(SystemExit, match="run the benchmark in full"):
        verifier.refresh_beam(setup, 100)
