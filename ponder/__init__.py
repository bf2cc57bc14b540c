"""ponder: inference-time scaling for language models. Sample, vote, verify, search, and account for every token.

>>> from ponder import Problem, run, open_generator   # the three things most programs need
"""

from ponder.backends import open_generator
from ponder.errors import PonderError
from ponder.strategies import available as strategies
from ponder.strategies import run
from ponder.types import Budget, Completion, GenerationRequest, Problem, Prompt, Result, SamplingParams, Usage

__version__ = "0.1.0"

__all__ = ["Budget", "Completion", "GenerationRequest", "PonderError", "Problem", "Prompt", "Result", "SamplingParams",
           "Usage", "open_generator", "run", "strategies"]
