"""The ``poppk`` command line: a thin layer over the public API, one module per group of commands.

Every command reads NONMEM-style CSV and writes plain files. A
:class:`~poppk.errors.PoppkError` (bad data, bad model, bad arguments) is
printed without a traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from poppk import PoppkError, configure_jax, guard_interrupts

from . import _batch, _data, _demo, _efficacy, _fitting, _use


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poppk", description="Bayesian population PK from NONMEM-style data.")
    sub = parser.add_subparsers(dest="command", required=True)

    for group in (_data, _fitting, _use, _efficacy, _batch, _demo):
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    guard_interrupts()
    parser = build_parser()
    args = parser.parse_args(argv)
    pre = getattr(args, "before_jax", None)
    if pre is not None:
        pre(args)
    configure_jax()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
            return int(args.func(args) or 0)
    except PoppkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``poppk`` console command: :func:`main`, then exit without tearing JAX down.

    After a fit, the interpreter's own shutdown spends a noticeable share of a short command's time
    destroying JAX's compiled programs, buffers and device threads; everything the command writes is
    closed by then, so the process ends at once with the command's status. An
    exception other than the handled ones propagates as usual (traceback, normal exit).
    """
    import logging
    import os

    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):
            pass  # a reader that went away (``poppk ... | head``): nothing left to say to it
    os._exit(code)
