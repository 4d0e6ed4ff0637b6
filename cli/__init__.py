"""The `intent-ledger` command line: thin click commands over the ledger, projections and publisher."""

__all__: list[str] = []
