"""The README is the front door: its two commands are the ones CI runs, and its command list is true.

Reference: README.md itself (the fenced block under "Two commands") and ``poppk --help``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_ci_runs_the_readme_commands_verbatim():
    commands = readme_commands()
    assert len(commands) == 2, commands
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    for command in commands:
        assert command in ci, f"README command not run verbatim by .ci/run: {command}"
    assert "pytest" in commands[1] and "poppk demo" in commands[0]


def test_readme_lists_every_command(cli):
    res = cli("--help")
    listed = re.search(r"\{([a-z,-]+)\}", res.stdout).group(1).split(",")
    text = (ROOT / "README.md").read_text()
    missing = [c for c in listed if f"poppk {c}" not in text]
    assert not missing, f"commands missing from the README: {missing}"


def test_readme_is_a_front_door():
    """At most about 12 KB (the house issue's limit, 12,288 bytes), and every page it links exists."""
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 12_288
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links and all((ROOT / link).exists() for link in links), [x for x in links if not (ROOT / x).exists()]
