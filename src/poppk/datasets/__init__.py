"""Bundled datasets: list them, find their files, load them."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent

#: name -> (file, description, dose unit, concentration unit)
CATALOG: dict[str, tuple[str, str, str, str]] = {
    "theophylline": (
        "theophylline.csv",
        "Theophylline single oral dose, 12 subjects (R datasets::Theoph; AMT = Dose x Wt in mg)",
        "mg",
        "mg/L",
    ),
}


def names() -> list[str]:
    """Names of the bundled datasets."""
    return list(CATALOG)


def path(name: str) -> Path:
    """Path of a bundled dataset's CSV file."""
    from ..errors import PoppkError

    try:
        return _HERE / CATALOG[name][0]
    except KeyError:
        raise PoppkError(f"no bundled dataset {name!r}; choose one of {', '.join(CATALOG)}") from None


def export(name: str, target: str | Path) -> Path:
    """Copy a bundled dataset's CSV to ``target`` (a file or folder)."""
    import shutil

    src = path(name)
    target = Path(target)
    if target.is_dir():
        target = target / src.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return target
