"""The embedded default store: DuckDB (``store``), with all its SQL in ``sql``."""
