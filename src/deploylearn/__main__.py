"""``python -m deploylearn`` is the twin of the ``ign`` command."""

from deploylearn.cli.app import main

main()
