"""The ``poppk`` command line: a thin layer over the public API.

Every command reads NONMEM-style CSV and writes plain files. A
:class:`~poppk.errors.PoppkError` (bad data, bad model, bad arguments) is
printed without a traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import PoppkError


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="NONMEM-style CSV file")
    p.add_argument("--dose-unit", default="mg", help="unit of AMT (default mg)")
    p.add_argument("--conc-unit", default="mg/L", help="unit of DV (default mg/L)")
    p.add_argument("--lloq", type=float, default=None, help="LLOQ for BLQ records when the data have no LLOQ column")


def _read(args):
    from .data import read_nonmem

    return read_nonmem(args.data, dose_unit=args.dose_unit, conc_unit=args.conc_unit, lloq=args.lloq)


def _write_table(frame, out: str | None) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        print(f"wrote {out}")
    else:
        frame.to_csv(sys.stdout, index=False)


def _parse_params(items: list[str]) -> dict[str, float]:
    params = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            params[name.strip().upper()] = float(value)
        except ValueError:
            raise PoppkError(f"--param expects NAME=VALUE with a number, got {item!r}") from None
    return params


def cmd_predict(args) -> int:
    import numpy as np

    from .data import from_frame
    from .data._read import read_csv_frame
    from .pk import get_kernel, predict

    original, name = read_csv_frame(args.data)
    data = from_frame(original, dose_unit=args.dose_unit, conc_unit=args.conc_unit, lloq=args.lloq, source=name)
    kernel = get_kernel(args.model, data.dose_unit, data.conc_unit)
    pred = predict(kernel, _parse_params(args.param), data)
    present = np.asarray(data.present)
    pred_col = np.full(len(original), np.nan)
    pred_col[np.asarray(data.row)[present]] = pred[present]
    original["PRED"] = pred_col
    _write_table(original, args.out)
    return 0


def cmd_datasets(args) -> int:
    from . import datasets

    if args.action is None:
        for name in datasets.names():
            print(f"{name:<24} {datasets.CATALOG[name].description}")
        return 0
    if args.action != "export" or len(args.rest) != 2:
        raise PoppkError("usage: poppk datasets [export NAME FILE]")
    name, target = args.rest
    out = datasets.export(name, target)
    print(f"wrote {out}")
    return 0


def cmd_cache(args) -> int:
    import jax

    from ._config import CACHE_MAX_BYTES

    where = jax.config.jax_compilation_cache_dir  # set by configure_jax, or the user's own JAX setting
    if where is None:
        print("the compilation cache is off (POPPK_CACHE_DIR=off, or its folder cannot be written)")
        return 0
    path = Path(where)
    programs = sorted(path.glob("*-cache")) if path.is_dir() else []
    size = sum(f.stat().st_size for f in programs) / 2**20
    if args.clear:
        for f in path.iterdir():
            if f.is_file() and f.name.endswith(("-cache", "-atime")):
                f.unlink()
        print(f"cleared {path}: {len(programs)} compiled programs, {size:.1f} MiB")
    else:
        print(f"{path}: {len(programs)} compiled programs, {size:.1f} MiB (pruned to {CACHE_MAX_BYTES / 2**20:.0f} MiB "
              "daily; POPPK_CACHE_DIR=DIR moves it, POPPK_CACHE_DIR=off turns it off, --clear empties it)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poppk", description="Bayesian population PK from NONMEM-style data.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="population predictions (no variability) at every record")
    _data_args(p)
    p.add_argument("--model", required=True, help="structural model: oral1cmt, oral1cmt_ode, oral1cmt_mm")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="parameter value (repeat)")
    p.add_argument("--out", help="output CSV (default: standard output)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("datasets", help="list bundled datasets, or export one: datasets export NAME FILE")
    p.add_argument("action", nargs="?", choices=["export"])
    p.add_argument("rest", nargs="*")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("cache", help="where compiled programs are kept between runs, and their size; --clear empties it")
    p.add_argument("--clear", action="store_true", help="delete every compiled program in the cache")
    p.set_defaults(func=cmd_cache)

    from ._cli_more import add_commands
    from ._cli_use import add_commands as add_use_commands

    add_commands(sub)
    add_use_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ._config import configure_jax, guard_interrupts

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

    After a fit, the interpreter's own shutdown spent about 0.55 s destroying JAX's compiled programs,
    buffers and device threads (theophylline, measured: 6.13 s with it, 5.58 s without); everything
    the command writes is closed by then, so the process ends at once with the command's status. An
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


if __name__ == "__main__":
    run()
