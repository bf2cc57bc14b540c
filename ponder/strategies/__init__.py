"""Test-time strategies: algorithms over the Generator and Scorer protocols. See :mod:`ponder.strategies.registry`."""

from ponder.strategies.registry import StrategyInfo, available, get, parse_spec, run

__all__ = ["StrategyInfo", "available", "get", "parse_spec", "run"]
