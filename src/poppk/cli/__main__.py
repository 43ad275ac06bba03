"""``python -m poppk.cli``: the ``poppk`` command."""

from . import run

if __name__ == "__main__":  # a Dask worker process started by spawn imports this module again: no command there
    run()
