"""Pure folds of the ledger: timelines, the fleet view, the intent projector, read models and audits."""

__all__: list[str] = []
