"""Cost of one log-density-like gradient of Michaelis-Menten elimination on the bundled trial: the bundled
kernel (``oral1cmt_mm``, its depot solved exactly) on its fixed grid and adaptively, and the same model
written as a user would write it (``AbstractODEModel``: two states, a ``rhs`` without dosing terms) on the
general engine's fixed grid; reverse mode vs forward sensitivities (``predict_subjects(..., forward=True)``).

Run: .venv/bin/python benchmarks/ode_gradient.py  (ms per gradient and s to compile; not part of CI)
"""
import sys
from pathlib import Path
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

import poppk
from poppk.pk import AbstractODEModel, Oral1CmtMM, predict_subjects

sys.path.insert(0, str(Path(__file__).parent))
from _timing import compile_and_time  # noqa: E402


class UserMM(AbstractODEModel):
    """Oral1CmtMM as a user's file would define it: no specialised solver."""

    compartments: ClassVar[tuple[str, ...]] = ("depot", "central")
    parameters: ClassVar[tuple[str, ...]] = ("VMAX", "KM", "V", "KA")
    units: ClassVar[dict[str, str]] = {"VMAX": "amount/h", "KM": "conc", "V": "L", "KA": "1/h"}

    def rhs(self, t, a, p):
        conc = self.scale * a[1] / p["V"]
        absorbed = p["KA"] * a[0]
        return jnp.stack([-absorbed, absorbed - p["VMAX"] * conc / (p["KM"] + conc)])


poppk.configure_jax()
data = poppk.datasets.load("lxi15029")
tr = poppk.datasets.load("lxi15029_truth")["individual"]
lp = {k: jnp.log(np.asarray(tr[k], float)) for k in ("VMAX", "KM", "V", "KA")}
results = {}
for label, m in (("oral1cmt_mm, adaptive", Oral1CmtMM(scale=1000.0, grid=0)),
                 ("oral1cmt_mm, fixed grid", Oral1CmtMM(scale=1000.0)),
                 ("user ODE (general engine), fixed grid", UserMM(scale=1000.0))):
    prep = m.prepare(data.doses, data.sampling)
    for forward in (False, True):
        def f(lp, m=m, prep=prep, forward=forward):
            c = predict_subjects(m, {k: jnp.exp(v) for k, v in lp.items()}, prep, data.sampling, forward=forward)
            return jnp.sum(jnp.where(data.present, jnp.log(c + 1e-9), 0.0))

        import jax

        per_call, compile_s = compile_and_time(jax.grad(f), lp)
        default = forward == m.forward_sensitivities
        results[(label, forward)] = per_call
        print(f"{label}, {'forward sensitivities' if forward else 'reverse mode'}{' (default)' if default else ''}: "
              f"{1000 * per_call:.1f} ms per gradient, compiled in {compile_s:.1f} s", flush=True)
user = results[("user ODE (general engine), fixed grid", UserMM(scale=1000.0).forward_sensitivities)]
bundled = results[("oral1cmt_mm, fixed grid", True)]
print(f"user ODE / bundled kernel, each by its default mode: {user / bundled:.2f}x")
