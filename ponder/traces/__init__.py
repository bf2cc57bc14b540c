"""The flywheel's first half: stored evaluation results become training data and few-shot exemplars."""
