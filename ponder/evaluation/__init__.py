"""The evaluator: tasks x strategies x budgets, a resumable store, metrics and reports."""
