"""What every command shares: data arguments, reading and writing tables, number formats, devices."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from poppk import PoppkError, set_host_devices


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The positional DATA file and its units (every command that reads NONMEM-style records)."""
    p.add_argument("data", help="NONMEM-style CSV file")
    p.add_argument("--dose-unit", default="mg", help="unit of AMT (default mg)")
    p.add_argument("--conc-unit", default="mg/L", help="unit of DV (default mg/L)")
    p.add_argument("--lloq", type=float, default=None, help="LLOQ for BLQ records when the data have no LLOQ column")


def read_data(args):
    from poppk import read_nonmem

    return read_nonmem(args.data, dose_unit=args.dose_unit, conc_unit=args.conc_unit, lloq=args.lloq)


def read_table(path: str, what: str):
    """A CSV table the user names (``what`` says which, for the error): a PoppkError, not a traceback,
    when it cannot be read."""
    import pandas as pd

    from poppk import PoppkError

    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PoppkError(f"cannot read the {what} {path}: {exc}") from None


def write_table(frame, out: str | None) -> None:
    """``frame`` as CSV to ``out`` (saying so), or to standard output."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        print(f"wrote {out}")
    else:
        frame.to_csv(sys.stdout, index=False)


def fmt_table(frame, floatfmt: str = "{:.4g}") -> str:
    """A DataFrame as aligned plain text for the terminal."""
    import pandas as pd

    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else floatfmt.format(v)
        return str(v)

    cols = [str(c) for c in frame.columns]
    rows = [[fmt(v) for v in r] for r in frame.itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]

    def line(vals):
        return "  ".join(v.rjust(w) if i >= 1 else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths)))

    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def parse_params(items: list[str]) -> dict[str, float]:
    """``["CL=10", "V=50"]`` -> ``{"CL": 10.0, "V": 50.0}``; PoppkError naming the bad item."""
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


def positive_int(value: int, name: str) -> int:
    if value < 1:
        raise PoppkError(f"{name} must be at least 1, got {value}")
    return value


def number_list(text: str, flag: str, example: str) -> list[float]:
    """``"10,20,40"`` -> ``[10.0, 20.0, 40.0]``; PoppkError naming ``flag`` otherwise."""
    try:
        return [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise PoppkError(f"{flag} expects numbers separated by commas, e.g. {example}; got {text!r}") from None


def set_chain_devices(args) -> None:
    """One XLA device per chain, before JAX starts: chains then run in parallel on all cores (more chains
    than cores still share the cores, which beats running them one after the other)."""
    set_host_devices(max(1, args.chains))


def files_only() -> None:
    """Draw to files, never to a window (commands that save figures call this before drawing)."""
    import matplotlib

    matplotlib.use("Agg")
