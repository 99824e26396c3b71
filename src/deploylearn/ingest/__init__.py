"""Ingest: reading files of executions (``formats``), preparing them in worker processes
(``workers``) and writing them to a store in batches with a report (``runner``)."""
