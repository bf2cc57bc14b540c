"""What ponder does when it is told nothing: the model and the search ``ponder ask`` uses with no options.

They follow the headline benchmark (``bench/scaling.py``, ``default_config`` in ``bench/results/scaling.json``):
the most accurate configuration it measured on ``gsm_symbolic`` within about 30 s per question on 2 cores, ties to
fewer tokens. ``tests/test_defaults.py`` fails when the benchmark's choice and these differ.
"""

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
# program-aided reasoning: the greedy program and 3 sampled ones, run in the sandbox, a vote over what they print
ASK_STRATEGY = "program?n=4"
ASK_SECONDS = 30.0  # the per-question time the default must fit on 2 cores
