"""``poppk demo``: the whole workflow on the bundled example trial."""

from __future__ import annotations

from poppk import set_host_devices

from ._common import files_only


def _demo_devices(args) -> None:
    set_host_devices(4)  # the demo's fits run 4 chains


def cmd_demo(args) -> int:
    files_only()
    from poppk.demo import run_demo

    run_demo(args.out, quick=args.quick)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="the workflow on the bundled example trial")
    p.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--quick", action="store_true", help="fewer draws, linear model only (a few minutes)")
    p.set_defaults(func=cmd_demo, before_jax=_demo_devices)
