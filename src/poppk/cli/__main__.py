"""``python -m poppk.cli``: the ``poppk`` command."""

from . import run

run()
