"""Summaries, curves and a self-contained HTML report of a stored evaluation run."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ponder.evaluation.contention import contended_share, machine_label
from ponder.evaluation.metrics import bootstrap_ci, mean_pass_at_k
from ponder.evaluation.store import Store


@dataclass(frozen=True)
class Prices:
    """Dollars per million tokens, and per machine-hour, for the cost columns."""

    prompt_per_m: float = 0.0
    completion_per_m: float = 0.0
    machine_per_hour: float = 0.0


def _labels(results, shown_always: tuple[str, ...] = ()) -> dict[tuple[str, str, str], str]:
    """A row label per (model, strategy, params): the strategy's name, plus those of ``shown_always`` that are set
    (``prompt``: which proposal distribution a row drew from), plus the parameters that tell apart the variants one
    model ran of the same strategy with the same ``shown_always`` values (``adaptive_majority?criterion=esc``).

    >>> rows = [dict(model="m", strategy="majority", params=json.dumps(p)) for p in
    ...         ({"t": 0.7}, {"t": 0.7, "prompt": "pal"}, {"t": 0.3, "prompt": "pal"})]
    >>> sorted(_labels(rows, ("prompt",)).values())
    ['majority', 'majority?prompt=pal&t=0.3', 'majority?prompt=pal&t=0.7']
    """
    variants: dict[tuple, set[str]] = defaultdict(set)
    for r in results:
        shown = json.loads(r["params"])
        variants[(r["model"], r["strategy"], *(json.dumps(shown.get(k)) for k in shown_always))].add(r["params"])
    labels = {}
    for (model, strategy, *_), params in variants.items():
        decoded = {p: json.loads(p) for p in params}
        differing = sorted({k for d in decoded.values() for k in d if len({json.dumps(x.get(k)) for x in decoded.values()}) > 1}
                           - set(shown_always))
        for p, d in decoded.items():
            named = [k for k in shown_always if d.get(k)] + differing
            shown = "&".join(f"{k}={d[k]}" for k in named if k in d and d[k] is not None)
            labels[(model, strategy, p)] = strategy + (f"?{shown}" if shown else "")
    return labels


def summarize(store: Store, run: str, prices: Prices = Prices(), seed: int = 0, items: set[str] | None = None,
              strategies: set | None = None, label_params: tuple[str, ...] = ()) -> list[dict]:
    """Accuracy (with a seeded bootstrap 95% interval), the share of items with a right answer among the candidates
    (what a perfect selector would score), tokens, seconds and cost per model, strategy variant and budget;
    ``items`` restricts it to those task items (to compare configurations on exactly the same questions),
    ``strategies`` to those strategy names (every variant of each) or ``(name, params)`` pairs (exactly those
    variants, ``params`` as stored); ``label_params`` are named in a row's strategy label whenever set."""
    results = [r for r in store.results(run) if (items is None or r["item"] in items)
               and (strategies is None or r["strategy"] in strategies or (r["strategy"], r["params"]) in strategies)]
    labels = _labels(results, label_params)
    groups: dict[tuple[str, str, int], list] = defaultdict(list)
    for r in results:
        groups[(r["model"], labels[(r["model"], r["strategy"], r["params"])], r["budget"])].append(r)
    return [{"model": model, "strategy": strategy, "budget": budget, **aggregate(rs, seed, prices)}
            for (model, strategy, budget), rs in sorted(groups.items())]


def aggregate(rs: list, seed: int = 0, prices: Prices = Prices()) -> dict:
    """One summary row's figures over stored results ``rs`` (at least one): items, accuracy with its seeded bootstrap
    95% interval, the share with a right candidate, tokens, seconds and cost per problem."""
    acc, lo, hi = bootstrap_ci([r["correct"] for r in rs], seed=seed)
    n = len(rs)
    prompt = sum(r["prompt_tokens"] for r in rs) / n
    completion = sum(r["completion_tokens"] for r in rs) / n
    seconds = sum(r["seconds"] for r in rs) / n
    return {
        "items": n, "accuracy": acc, "ci_low": lo, "ci_high": hi,
        "any_correct": sum(1 for r in rs if r["n_correct"] > 0) / n,
        "completion_tokens": completion, "prompt_tokens": prompt, "seconds": seconds,
        "cost_usd": (prompt * prices.prompt_per_m + completion * prices.completion_per_m) / 1e6 + seconds / 3600 * prices.machine_per_hour,
        "machine_seconds": seconds,
        # the share of items measured while other processes kept >= 0.5 cores busy (their seconds are inflated)
        "contended": contended_share([r["other_cpu"] if "other_cpu" in r.keys() else None for r in rs]),
        # the processors the seconds were measured on (None: not recorded, a store that predates the column)
        "machine": machine_label([r["machine"] if "machine" in r.keys() else None for r in rs]),
    }


def coverage(store: Store, run: str, items: set[str] | None = None) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """pass@k for k = 1, 2, 4, ... up to the samples drawn, per model and sampling parameters, from the stored
    samples (greedy's temperature-0 samples are not draws and are left out)."""
    counts: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in store.all_samples(run):
        if (items is not None and s["item"] not in items) or json.loads(s["params"]).get("temperature") == 0:
            continue
        counts[(s["model"], s["params"])][s["item"]].append(s["correct"])
    per_model = defaultdict(int)
    for model, _ in counts:
        per_model[model] += 1
    out = {}
    for (model, params), by_item in counts.items():
        n_min = min(len(v) for v in by_item.values())
        pairs = [(n_min, sum(1 for x in v[:n_min] if x > 0)) for v in by_item.values()]
        ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= n_min]
        label = "samples" if per_model[model] == 1 else f"samples {params}"
        out[(model, label)] = [(k, mean_pass_at_k(pairs, k)) for k in ks]
    return out


def _plot(summary: list[dict], cov, out: Path) -> dict[str, Path]:
    try:
        import matplotlib
    except ImportError:
        from ponder.errors import InvalidRequest

        raise InvalidRequest("ponder report draws its figures with matplotlib, which is not installed: "
                             "pip install 'ponder[eval]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    series = defaultdict(list)
    for r in summary:
        series[(r["model"], r["strategy"])].append(r)
    for fname, xkey, xlabel in (("accuracy_vs_tokens.png", "completion_tokens", "generated tokens per problem (log)"),
                                ("accuracy_vs_seconds.png", "seconds", "wall seconds per problem (log)")):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for (model, strategy), rs in sorted(series.items()):
            rs = sorted(rs, key=lambda r: r[xkey])
            xs = [max(r[xkey], 1e-3) for r in rs]
            ys = [r["accuracy"] for r in rs]
            err = [[r["accuracy"] - r["ci_low"] for r in rs], [r["ci_high"] - r["accuracy"] for r in rs]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=f"{strategy} · {model}")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (95% bootstrap interval)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths[fname] = out / fname
        fig.savefig(paths[fname], dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for (model, strategy), pts in sorted(cov.items()):
        if pts:
            ax.plot([k for k, _ in pts], [v for _, v in pts], marker="o", label=f"{strategy} · {model}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k samples")
    ax.set_ylabel("pass@k coverage (unbiased estimator)")
    ax.grid(alpha=0.3)
    if cov:
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths["coverage.png"] = out / "coverage.png"
    fig.savefig(paths["coverage.png"], dpi=110)
    plt.close(fig)
    return paths


def items_table(store: Store, run: str, explorer: str) -> str:
    """Every item of the run with how many of its results are right and the explorer's flags, each linked to the
    trace explorer (``ponder serve --store`` on this store, at ``explorer``), which opens it with its results."""
    from urllib.parse import urlencode

    from ponder.evaluation.explore import run_items

    rows = []
    for it in run_items(store, run)["items"]:
        right = sum(1 for r in it["results"] if r["correct"] > 0)
        flags = " ".join(f for f in ("wrong", "changed", "disagree") if it[f])
        link = f"{explorer.rstrip('/')}/ui#{urlencode({'run': run, 'item': it['item']})}"
        rows.append(f'<tr><td><a href="{html.escape(link)}">{html.escape(it["item"])}</a></td>'
                    f"<td>{html.escape(str(it['reference']))}</td><td>{right}/{len(it['results'])}</td><td>{flags}</td></tr>")
    return ('<h2>Items</h2><p>Each item opens in the trace explorer (<code>ponder serve --store THIS_STORE</code>, at '
            f'{html.escape(explorer)}): every result stored for it, its candidates, votes and tree.</p>'
            '<table class="items"><tr><th>item</th><th>reference</th><th>right</th><th>flags</th></tr>' + "".join(rows) + "</table>")


def write_report(store: Store, run: str, out: str | Path, prices: Prices = Prices(), items: set[str] | None = None,
                 seed: int = 0, strategies: set | None = None, explorer: str | None = None) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(store, run, prices, seed=seed, items=items, strategies=strategies)
    cov = coverage(store, run, items)
    paths = _plot(summary, cov, out)
    (out / "summary.json").write_text(json.dumps({"run": run, "config": store.run_config(run), "summary": summary,
                                                  "coverage": {f"{m}/{s}": v for (m, s), v in cov.items()}}, indent=2))
    paths["summary.json"] = out / "summary.json"
    rows = "".join(
        f"<tr><td>{html.escape(r['model'])}</td><td>{html.escape(r['strategy'])}</td><td>{r['budget']}</td><td>{r['items']}</td>"
        f"<td>{r['accuracy']:.3f}</td><td>[{r['ci_low']:.3f}, {r['ci_high']:.3f}]</td><td>{r['completion_tokens']:.0f}</td>"
        f"<td>{r['prompt_tokens']:.0f}</td><td>{r['seconds']:.2f}</td><td>{r['cost_usd']:.6f}</td></tr>"
        for r in summary)
    imgs = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{name}</figcaption></figure>'
        for name, p in paths.items() if name.endswith(".png"))
    cfg = html.escape(json.dumps(store.run_config(run), indent=1))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>ponder report: {html.escape(run)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:nth-child(-n+2){{text-align:left}}img{{max-width:100%}}
figure{{display:inline-block;margin:0 1em 1em 0;max-width:48%}}</style></head><body>
<h1>ponder evaluation: {html.escape(run)}</h1><pre>{cfg}</pre>{imgs}
<table><tr><th>model</th><th>strategy</th><th>budget</th><th>items</th><th>accuracy</th><th>95% CI</th>
<th>generated tokens</th><th>prompt tokens</th><th>seconds</th><th>cost $</th></tr>{rows}</table>
{items_table(store, run, explorer) if explorer else ""}</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
    paths["report.html"] = out / "report.html"
    return paths


def export(store: Store, run: str, path: str | Path) -> Path:
    """Results as JSONL (``.jsonl``) or CSV (``.csv``, readable by ``pandas.read_csv``)."""
    path = Path(path)
    rows = [dict(r) for r in store.results(run)]
    if path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["run"])
            w.writeheader()
            w.writerows(rows)
    else:
        buf = io.StringIO()
        for r in rows:
            buf.write(json.dumps(r) + "\n")
        path.write_text(buf.getvalue(), encoding="utf-8")
    return path
