"""``python -m poppk``: the same entry point as the ``poppk`` command."""

from .cli import run

if __name__ == "__main__":
    run()
