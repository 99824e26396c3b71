"""Ingest: reading files of executions (``formats``) and preparing them in worker processes
(``workers``); the store writes what they prepare."""
