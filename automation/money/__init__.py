"""Money: the ledger (``token_budget.json``), where it is read from, reservations on the ledger branch, the budget, the run's cost model.

Imports ``core`` and ``repo`` (git, for the ledger branch); it must not import models, reporting or steps.
"""
