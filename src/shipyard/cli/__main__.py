"""``python -m shipyard.cli``: the ``shipyard`` script, for when it is not on PATH."""

from shipyard.cli import main

main()
