"""The built-in strategies, each a :class:`StrategyInfo` named by an entry point in ``pyproject.toml``."""

from ponder.strategies import sampling
from ponder.strategies.registry import StrategyInfo

GREEDY = StrategyInfo("greedy", sampling.greedy, sampling.GreedyParams, "one completion at temperature 0")
SAMPLE = StrategyInfo("sample", sampling.sample, sampling.SampleParams, "one sampled completion")
MAJORITY = StrategyInfo(
    "majority", sampling.majority, sampling.MajorityParams,
    "self-consistency: sample n paths in one batch, vote on the final answer",
    paper="Wang et al. 2022, Self-Consistency Improves Chain of Thought Reasoning, arXiv:2203.11171",
)
