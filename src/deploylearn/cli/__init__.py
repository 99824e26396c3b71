"""The ``ign`` command: a thin shell over the Python API."""
