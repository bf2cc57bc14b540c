"""The built-in strategies, each a :class:`StrategyInfo` named by an entry point in ``pyproject.toml``."""

from ponder.strategies import adaptive, cascade, programs, sampling, sequential, tree
from ponder.strategies.registry import StrategyInfo

GREEDY = StrategyInfo("greedy", sampling.greedy, sampling.GreedyParams, "one completion at temperature 0",
                      evaluation="shared_samples", choose=sampling.choose_first, streams_path=True)
SAMPLE = StrategyInfo("sample", sampling.sample, sampling.SampleParams, "one sampled completion",
                      evaluation="shared_samples", choose=sampling.choose_first, streams_path=True)
MAJORITY = StrategyInfo(
    "majority", sampling.majority, sampling.MajorityParams,
    "self-consistency: sample n paths in one batch, vote on the final answer",
    paper="Wang et al. 2022, Self-Consistency Improves Chain of Thought Reasoning, arXiv:2203.11171",
    size_param="n", evaluation="shared_samples", choose=sampling.choose_by_vote,
)
BEST_OF_N = StrategyInfo(
    "best_of_n", sampling.best_of_n, sampling.BestOfNParams, "n samples, the scorer picks the best",
    paper="Cobbe et al. 2021, Training Verifiers to Solve Math Word Problems, arXiv:2110.14168", default_scorer="judge",
    size_param="n", evaluation="shared_samples", choose=sampling.choose_best_scored,
)
WEIGHTED_BEST_OF_N = StrategyInfo(
    "weighted_best_of_n", sampling.weighted_best_of_n, sampling.WeightedBestOfNParams,
    "n samples, votes weighted by the scorer's scores",
    paper="Snell et al. 2024, Scaling LLM Test-Time Compute Optimally, arXiv:2408.03314", default_scorer="judge",
    size_param="n", evaluation="shared_samples", choose=sampling.choose_by_weighted_vote,
)
VERIFIED_SAMPLING = StrategyInfo(
    "verified_sampling", sampling.verified_sampling, sampling.VerifiedSamplingParams,
    "sample in rounds until a candidate passes the verifier",
    paper="Brown et al. 2024, Large Language Monkeys, arXiv:2407.21787", default_scorer="judge",
    size_param="batch", budget_axis=lambda k: {"max_samples": k, "batch": min(k, 4)},
)
BEAM = StrategyInfo(
    "beam", tree.beam, tree.BeamParams, "step-level beam search guided by step scores",
    paper="Snell et al. 2024, arXiv:2408.03314; search-and-learn", default_scorer="confidence",
    size_param="width", budget_axis=lambda k: {"width": k, "keep": k // 2 if k % 2 == 0 else 1},
)
DVTS = StrategyInfo(
    "dvts", tree.dvts, tree.DVTSParams, "diverse verifier tree search: independent greedy subtrees",
    paper="Beeching, Tunstall, Rush 2024, Scaling test-time compute with open models (HuggingFace)",
    default_scorer="confidence", size_param="width", budget_axis=lambda k: {"width": k, "expand": 2 if k % 2 == 0 else 1},
)
MCTS = StrategyInfo(
    "mcts", tree.mcts, tree.MCTSParams, "Monte-Carlo tree search over reasoning steps (UCT/PUCT)",
    paper="Kocsis & Szepesvári 2006 (UCT); Qi et al. 2024 rStar, arXiv:2408.06195", default_scorer="confidence",
    size_param="iterations", budget_axis=lambda k: {"iterations": 2 * k}, evaluation="anytime", anytime=tree.mcts_snapshots,
)
BUDGET_FORCING = StrategyInfo(
    "budget_forcing", sequential.budget_forcing, sequential.BudgetForcingParams,
    "s1: extend short thinking with 'Wait', cut long thinking and force the answer",
    paper="Muennighoff et al. 2025, s1: Simple test-time scaling, arXiv:2501.19393", size_param="n", streams_path=True,
)
SELF_REFINE = StrategyInfo(
    "self_refine", sequential.self_refine, sequential.SelfRefineParams,
    "critique and revise k rounds, keep the best-scored version",
    paper="Madaan et al. 2023, Self-Refine, arXiv:2303.17651", default_scorer="judge",
    size_param="rounds", budget_axis=lambda k: {"rounds": max(1, k - 1)},
)
ADAPTIVE_MAJORITY = StrategyInfo(
    "adaptive_majority", adaptive.adaptive_majority, adaptive.AdaptiveMajorityParams,
    "majority voting in rounds, stopping once the vote is settled (Beta, Dirichlet or ESC window)",
    paper="Aggarwal et al. 2023, Adaptive-Consistency, arXiv:2305.11860; Li et al. 2024, ESC, arXiv:2401.10480",
    size_param="batch", budget_axis=lambda k: {"max_samples": k}, evaluation="replay",
)
DEEPCONF = StrategyInfo(
    "deepconf", adaptive.deepconf, adaptive.DeepConfParams,
    "warm-up traces set a confidence threshold; later traces stop when their confidence drops, and no more are drawn "
    "once the confident ones agree; confident ones vote",
    paper="Fu et al. 2025, Deep Think with Confidence, arXiv:2508.15260", size_param="n", evaluation="replay",
)
AUTO = StrategyInfo(
    "auto", adaptive.auto, adaptive.AutoParams,
    "adaptive majority at an effort level: stop as soon as the vote settles, cap by effort",
    paper="Aggarwal et al. 2023 (adaptive stopping); Snell et al. 2024 (compute by difficulty)", evaluation="replay",
)
PROGRAM = StrategyInfo(
    "program", programs.program, programs.ProgramParams,
    "program-aided reasoning: n programs in one batch, run in the sandbox, a vote over what they print",
    paper="Gao et al. 2022, PAL: Program-aided Language Models, arXiv:2211.10435; Chen et al. 2022, Program of Thoughts, arXiv:2211.12588",
    size_param="n", evaluation="prefix", choose=sampling.choose_by_vote, shares_draws=True, default_prompt="pal",
)
TIR = StrategyInfo(
    "tir", programs.tir, programs.TIRParams,
    "tool-integrated reasoning: the model writes python blocks as it reasons; each runs in the sandbox and its output "
    "is appended to the trace, decoding continuing from the cached prefix; n traces in one batch, voted",
    paper="Gou et al. 2023, ToRA, arXiv:2309.17452; Yang et al. 2024, Qwen2.5-Math (tool-integrated reasoning), arXiv:2409.12122",
    size_param="n", evaluation="prefix", choose=sampling.choose_by_vote,
)
CASCADE = StrategyInfo(
    "cascade", cascade.cascade_strategy, cascade.CascadeParams,
    "answer with the first model's strategy; ask a larger model only when the winning vote share is below min_agreement",
    paper="Chen et al. 2023, FrugalGPT, arXiv:2305.05176 (LLM cascades)", model_params=("large",),
)
