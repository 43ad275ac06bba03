"""Simulation-based calibration (Talts et al. 2018) of a shipped model and poppk's sampler settings.

Run:  .venv/bin/python benchmarks/sbc.py --model oral1cmt --design rich --reps 100
      .venv/bin/python benchmarks/sbc.py --model oral1cmt --design sparse --reps 100
      .venv/bin/python benchmarks/sbc.py --summarise benchmarks/results/sbc     (tables and plots only)
      .venv/bin/python benchmarks/sbc.py --design rich --reps 50 --parameterization noncentered \
          --out benchmarks/results/sbc_noncentered                                (a variant, own folder)
      .venv/bin/python benchmarks/sbc.py --model oral1cmt_mm --design rich --reps 100 \
          --out benchmarks/results/sbc_mm                                          (Michaelis-Menten, ODE)
      .venv/bin/python benchmarks/sbc.py --model oral1cmt_mm --prior-check --out benchmarks/results/sbc_mm
                                   (the simulator's prior against NUTS on the model without its data)
      .venv/bin/python benchmarks/sbc.py --model oral1cmt_mm --truth-check --out benchmarks/results/sbc_mm
                                   (are the replications' truths a fair sample of the prior?)
      .venv/bin/python benchmarks/sbc.py --pool benchmarks/results/sbc_mm benchmarks/results/sbc_mm_seed7 \
          --out benchmarks/results/sbc_pooled            (runs with other seeds pooled: summary, plots;
                                                          with --model M --truth-check, M's truth check)
The user-facing tool is ``poppk sbc`` (:func:`poppk.batch.sbc`: any spec, any design, on a Dask cluster);
this script reproduces the committed runs in ``benchmarks/results/sbc*`` and keeps their prior and truth
checks. Not part of CI (on 2 cores about 10 s per replication for the closed-form model, 60-120 s for the
Michaelis-Menten ODE). A run stopped part-way resumes where it stopped (the rank file is rewritten after
every replication, each drawn from its own seed).

Each replication draws the population parameters from the model's own prior -- including the soft
wall that keeps KA above the elimination rate (a factor of the prior, drawn by rejection) -- draws
12 subjects' random effects and a dataset with residual error (BLQ records below the LLOQ censored,
as M3), fits it with the same model function and NUTS settings as ``poppk.fit``, and records the
rank of each true value among ``L`` thinned posterior draws. If the inference is calibrated, the
ranks are uniform on 0..L and the 50% / 90% central intervals cover the truth 50% / 90% of the time.

Designs (single oral dose of 100 mg at time 0, mg and mg/L, LLOQ 0.01 mg/L):
  rich    10 samples per subject at 0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24 h
  sparse   3 samples per subject at 1, 6, 24 h (non-centred IIV under "auto")

``--prior-check`` tests the premise: that ``draw_prior`` draws from the prior the fitted model has.
It runs NUTS on the model with every observation masked out (so the posterior is the prior, flip-flop
wall included) and compares its quantiles with 4,000 draws of ``draw_prior``, writing
``OUT/MODEL_prior_check.csv`` (per parameter: the 5/25/50/75/95% quantiles of each, and the two-sample
Kolmogorov-Smirnov p-value of the NUTS draws thinned to near-independence against the rejection draws).

``--truth-check`` asks whether the replications' true values are a fair sample of the prior: for each
parameter, the truths' quantiles in 4,000 fresh prior draws (uniform if fair; KS p-value), how many fall
in each prior quintile, and the coverage post-stratified by those quintiles (each quintile weighted 1/5),
which estimates the coverage over the prior whatever the particular truths were
(``OUT/MODEL_truths.csv``). Ranks of truths near the edge of the prior's support are low or high
by construction, so an unusual run of such truths skews the histogram without any fault in the fit.

``--pool DIR [DIR ...]`` reads the rank files from those folders instead of OUT, pooling the files of the
same model and design (replications drawn with different seeds are independent), and writes the summary,
plots and truth check of the pooled replications to OUT.

Writes ``OUT/MODEL_DESIGN_ranks.csv`` (one row per replication: ranks, coverage flags, diagnostics),
``OUT/sbc_summary.csv`` (per parameter: chi-square uniformity p-value, coverage with its Monte Carlo
SE and exact binomial p-value, and all of a run's p-values adjusted together by Holm: ``*_holm``; the
replications whose largest R-hat exceeds 1.01 and 1.05 against the range expected of chains that mix
as their ESS says, ``r_hat_over_*``) and ``OUT/MODEL_DESIGN_ranks.png`` (rank histograms with the 99%
band of a uniform histogram).

R-hat and short chains: 2 x 500 draws with a bulk ESS of 150 give a largest R-hat over eight parameters
above 1.01 in most fits even when every chain samples the posterior correctly (``r_hat_reference``), so
a replication's R-hat above 1.01 is not by itself a failure to converge; the count is read against
``r_hat_over_101_mixing_lo``-``_hi``. (``poppk fit``'s own default, 4 x 1,000, asks for ESS 400 as well.)
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import poppk
from poppk.batch import holm

poppk.set_host_devices(2)

N_SUBJECTS = 12
DOSE = 100.0
LLOQ = 0.01
DESIGNS = {"rich": [0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24], "sparse": [1, 6, 24]}
THIN = 100  # posterior draws kept per replication (ranks 0..THIN)
BINS = 10


def design_frame(times) -> pd.DataFrame:
    rows = []
    for i in range(1, N_SUBJECTS + 1):
        rows.append({"ID": i, "TIME": 0.0, "AMT": DOSE, "DV": np.nan, "EVID": 1, "MDV": 1, "CMT": 1, "LLOQ": np.nan})
        rows += [{"ID": i, "TIME": float(t), "AMT": 0.0, "DV": 1.0, "EVID": 0, "MDV": 0, "CMT": 2, "LLOQ": LLOQ}
                 for t in times]
    return pd.DataFrame(rows)


def draw_prior(spec, rng) -> dict:
    """Population parameters and individual parameters from the prior, by rejection for the flip-flop wall."""
    from poppk.model._build import FLIP_FLOP_WALL

    def expit(x):
        return 1 / (1 + np.exp(-x))

    kernel = spec.make_kernel("mg", "mg/L")  # its elimination rate, in mg and mg/L

    def elimination_rate(params, _scale=None):
        return kernel.elimination_rate(params)

    scale = kernel.scale
    while True:
        theta = {p.name: float(np.exp(rng.normal(np.log(p.prior.median), p.prior.sd_log)))
                 for p in spec.parameters if p.prior is not None}
        omega = {f"omega_{p}": float(abs(rng.normal(0, s))) for p, s in zip(spec.iiv.parameters, spec.iiv.omega)}
        sigma = {s: float(abs(rng.normal(0, spec.error.scale(s)))) if spec.error.sd_log(s) is None
                 else float(np.exp(rng.normal(np.log(spec.error.scale(s)), spec.error.sd_log(s))))
                 for s in spec.error.sigmas}
        ind = {p: np.full(N_SUBJECTS, theta[p]) for p in theta}
        for p in spec.iiv.parameters:
            ind[p] = theta[p] * np.exp(omega[f"omega_{p}"] * rng.standard_normal(N_SUBJECTS))
        # The wall is on KA against the low-concentration elimination rate: CL/V, or VMAX/(KM V).
        accept = expit(FLIP_FLOP_WALL * np.log(theta["KA"] / elimination_rate(theta, scale)))
        accept *= np.prod(expit(FLIP_FLOP_WALL * np.log(ind["KA"] / elimination_rate(ind, scale))))
        if rng.uniform() < accept:
            return {**theta, **omega, **sigma, "_ind": ind}


def simulate(spec, frame, truth, rng) -> pd.DataFrame:
    kernel = spec.make_kernel("mg", "mg/L")
    data = poppk.from_frame(frame, dose_unit="mg", conc_unit="mg/L")
    pred = poppk.pk.predict(kernel, truth["_ind"], data)  # prepares an ODE kernel's events; fails loudly
    present = np.asarray(data.present)
    by_row = np.empty(len(frame))
    by_row[np.asarray(data.row)[present]] = pred[present]
    out = frame.copy()
    obs = (out["EVID"] == 0).to_numpy()
    c = by_row[obs]
    err = spec.error.model
    eps = rng.standard_normal(c.size)
    if err == "exponential":
        dv = c * np.exp(truth["sigma_log"] * eps)
    elif err == "additive":
        dv = c + truth["sigma_add"] * eps
    elif err == "proportional":
        dv = c * (1 + truth["sigma_prop"] * eps)
    else:
        dv = c + np.sqrt(truth["sigma_add"] ** 2 + (truth["sigma_prop"] * c) ** 2) * eps
    out.loc[obs, "DV"] = dv
    out.loc[obs, "BLQ"] = (dv < LLOQ).astype(int)
    out.loc[obs & (out["BLQ"] == 1), "DV"] = np.nan
    out["BLQ"] = out["BLQ"].fillna(0).astype(int)
    return out


def run(model: str, design: str, reps: int, out: Path, seed: int, chains: int, warmup: int, samples: int,
        parameterization: str | None = None, target_accept: float = 0.8) -> Path:
    spec = poppk.load_spec(model)
    frame = design_frame(DESIGNS[design])
    path = out / f"{spec.name}_{design}_ranks.csv"
    rows = pd.read_csv(path).to_dict("records") if path.exists() else []  # resume where a run stopped
    for r in range(len(rows), reps):
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, r])  # replication r's own stream: resumable, order-free
        truth = draw_prior(spec, rng)
        data_frame = simulate(spec, frame, truth, rng)
        data = poppk.from_frame(data_frame, dose_unit="mg", conc_unit="mg/L")
        fit = poppk.fit(data, spec, chains=chains, warmup=warmup, samples=samples, seed=seed + r, progress=False,
                         parameterization=parameterization, target_accept=target_accept)
        diag = fit.diagnostics()
        row = {"rep": r, "seconds": round(time.perf_counter() - t0, 1), "divergences": diag["divergences"],
               "max_r_hat": diag["max_r_hat"], "min_ess_bulk": diag["min_ess_bulk"],
               "min_e_bfmi": min(diag["e_bfmi_per_chain"]), "chains": chains, "draws": samples,
               "blq_fraction": float(data_frame.loc[data_frame.EVID == 0, "BLQ"].mean()),
               "parameterization": fit.info["parameterization"], "warm_start": fit.info["warm_start"]}
        for name in fit.info["population"]:
            x = fit.draws(name)
            kept = x[np.linspace(0, x.size - 1, THIN).round().astype(int)]
            row[f"rank_{name}"] = int((kept < truth[name]).sum())
            lo50, hi50, lo90, hi90 = np.quantile(x, [0.25, 0.75, 0.05, 0.95])
            row[f"in50_{name}"] = bool(lo50 <= truth[name] <= hi50)
            row[f"in90_{name}"] = bool(lo90 <= truth[name] <= hi90)
            row[f"true_{name}"] = truth[name]
        rows.append(row)
        pd.DataFrame(rows).to_csv(path, index=False)
        jax.clear_caches()  # every fit compiles afresh; without this, ~70 fits exhausted LLVM's code memory
        print(f"{spec.name} {design} rep {r + 1}/{reps}: {row['seconds']} s, divergences {row['divergences']}, "
              f"r_hat {row['max_r_hat']:.3f}", flush=True)
    return path


def prior_check(model: str, out: Path, seed: int, draws: int = 4000) -> pd.DataFrame:
    """NUTS on ``model`` with no observations against ``draw_prior``: the same distribution if the simulator
    and the model share their prior (quantiles and a KS test per population parameter)."""
    import jax.numpy as jnp
    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import MCMC, NUTS
    from scipy import stats

    from poppk.model import build_model

    spec = poppk.load_spec(model)
    rng = np.random.default_rng([seed, 10**6])
    truth = draw_prior(spec, rng)
    data = poppk.from_frame(simulate(spec, design_frame(DESIGNS["rich"]), truth, rng), dose_unit="mg", conc_unit="mg/L")
    built = build_model(spec, data, parameterization="noncentered")  # the prior: no funnel to fear
    kwargs = dict(built.kwargs, mask=jnp.zeros_like(built.kwargs["mask"]), censored=jnp.zeros_like(built.kwargs["censored"]))
    mcmc = MCMC(NUTS(built.fn, target_accept_prob=0.9), num_warmup=1000, num_samples=draws, num_chains=1,
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), **kwargs, extra_fields=("diverging",))
    nuts = mcmc.get_samples()
    rejection = [draw_prior(spec, np.random.default_rng([seed, 2 * 10**6, i])) for i in range(draws)]
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    rows = []
    for name in built.population:
        a, b = np.asarray(nuts[name]), np.array([r[name] for r in rejection])
        ess = float(effective_sample_size(a[None, :]))
        thinned = a[:: max(1, int(round(a.size / ess)))]
        rows.append({"parameter": name, **{f"nuts_q{int(100 * x)}": v for x, v in zip(q, np.quantile(a, q))},
                     **{f"draw_prior_q{int(100 * x)}": v for x, v in zip(q, np.quantile(b, q))},
                     "nuts_ess": ess, "ks_p": float(stats.ks_2samp(thinned, b).pvalue)})
    table = pd.DataFrame(rows)
    table["divergences"] = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    table.to_csv(out / f"{spec.name}_prior_check.csv", index=False)
    return table


R_HAT_ESS = np.array([25, 40, 60, 80, 100, 130, 160, 200, 250, 320, 400, 500, 650, 800, 1000])


@functools.cache  # deterministic (its own seed), and about 10 s: once per chains x draws and process
def r_hat_reference(chains: int, draws: int, sims: int = 400, seed: int = 0) -> dict[int, np.ndarray]:
    """What R-hat a fit of ``chains`` x ``draws`` shows when its chains mix exactly as well as its ESS says
    and disagree no more than that: for each bulk ESS in ``R_HAT_ESS``, ``sims`` values of poppk's
    rank-normalised split R-hat of independent stationary AR(1) chains with that ESS (phi from
    ESS = N (1 - phi) / (1 + phi)). With short chains R-hat exceeds 1.01 routinely; this says how often."""
    from poppk.fit._convergence import rhat_rank

    rng = np.random.default_rng(seed)
    out = {}
    n = chains * draws
    for ess in R_HAT_ESS:
        phi = (n - ess) / (n + ess)
        x = np.empty((sims, chains, draws))
        x[..., 0] = rng.standard_normal((sims, chains))
        noise = rng.standard_normal((sims, chains, draws)) * np.sqrt(1 - phi**2)
        for t in range(1, draws):
            x[..., t] = phi * x[..., t - 1] + noise[..., t]
        out[int(ess)] = np.array([rhat_rank(c) for c in x])
    return out


def r_hat_expected(ranks: pd.DataFrame, threshold: float, params: int) -> tuple[float, float]:
    """Expected number of replications whose largest R-hat over ``params`` parameters exceeds
    ``threshold`` were every chain mixing as its minimum bulk ESS says (``r_hat_reference``): from one
    parameter at that ESS (the others mixing perfectly) to all ``params`` at it -- the truth lies between."""
    chains = ranks["chains"].fillna(2) if "chains" in ranks else pd.Series(2, index=ranks.index)  # committed
    draws = ranks["draws"].fillna(500) if "draws" in ranks else pd.Series(500, index=ranks.index)  # runs: 2 x 500
    lo = hi = 0.0
    for (c, d), group in ranks.groupby([chains.astype(int), draws.astype(int)]):
        reference = r_hat_reference(c, d)
        p_one = np.array([(reference[int(e)] > threshold).mean() for e in R_HAT_ESS])
        ess = np.clip(group["min_ess_bulk"].to_numpy(float), R_HAT_ESS[0], R_HAT_ESS[-1])
        p = np.interp(np.log(ess), np.log(R_HAT_ESS), p_one)
        lo += float(p.sum())
        hi += float((1 - (1 - p) ** params).sum())
    return lo, hi


def rank_files(folders: list[Path], prefix: str = "") -> dict[str, pd.DataFrame]:
    """The rank files ``PREFIX*_ranks.csv`` in ``folders`` by label (``MODEL_DESIGN``); files of the same
    label in several folders (runs with different seeds) are concatenated."""
    found: dict[str, list[pd.DataFrame]] = {}
    for folder in folders:
        for path in sorted(folder.glob(f"{prefix}*_ranks.csv")):
            found.setdefault(path.name[: -len("_ranks.csv")], []).append(pd.read_csv(path))
    return {label: pd.concat(frames, ignore_index=True) for label, frames in sorted(found.items())}


def truth_check(model: str, out: Path, seed: int, draws: int = 4000, folders: list[Path] | None = None
                ) -> pd.DataFrame:
    """Per rank file of ``model`` in ``folders`` (default: ``out``): are its truths a fair sample of the
    prior, and the coverage post-stratified by the truth's prior quintile."""
    from scipy import stats

    spec = poppk.load_spec(model)
    prior = [draw_prior(spec, np.random.default_rng([seed, 3 * 10**6, i])) for i in range(draws)]
    rows = []
    for label, ranks in rank_files(folders or [out], f"{spec.name}_").items():
        for name in [c[5:] for c in ranks.columns if c.startswith("rank_")]:
            quantile = np.searchsorted(np.sort([p[name] for p in prior]), ranks[f"true_{name}"]) / draws
            stratum = np.minimum((quantile * 5).astype(int), 4)
            counts = np.bincount(stratum, minlength=5)
            # Each prior fifth weighted equally; a fifth with no truth cannot be estimated, so the weights are
            # spread over the fifths that have some (always all five in the committed runs).
            weight = 1 / (np.count_nonzero(counts) * counts[stratum])
            row = {"model_design": label, "parameter": name, "replications": len(ranks),
                   "truths_ks_p": float(stats.kstest(quantile, "uniform").pvalue),
                   **{f"truths_in_quintile{k + 1}": int(c) for k, c in enumerate(counts)}}
            for level in (50, 90):
                hit = ranks[f"in{level}_{name}"].to_numpy(float)
                post = float((weight * hit).sum())
                row[f"coverage{level}"] = hit.mean()
                row[f"coverage{level}_poststratified"] = post
                row[f"coverage{level}_poststratified_se"] = float(np.sqrt((weight**2 * (hit - post) ** 2).sum()))
            rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / f"{spec.name}_truths.csv", index=False)
    return table


def summarise(out: Path, folders: list[Path] | None = None) -> pd.DataFrame:
    """Uniformity tests, coverage and rank histograms of the rank files in ``folders`` (default: ``out``),
    written to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    rows = []
    for label, ranks in rank_files(folders or [out]).items():
        names = [c[5:] for c in ranks.columns if c.startswith("rank_")]
        n = len(ranks)
        r_hat_counts = {}
        for threshold, tag in ((1.01, "101"), (1.05, "105")):
            lo, hi = r_hat_expected(ranks, threshold, len(names))
            r_hat_counts.update({f"r_hat_over_{tag}_reps": int((ranks["max_r_hat"] > threshold).sum()),
                                 f"r_hat_over_{tag}_mixing_lo": round(lo, 1), f"r_hat_over_{tag}_mixing_hi": round(hi, 1)})
        fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.6), squeeze=False)
        expected = n / BINS
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / BINS)
        for ax, name in zip(axes[0], names):
            counts = np.histogram(ranks[f"rank_{name}"], bins=BINS, range=(0, THIN + 1))[0]
            chi2 = float(((counts - expected) ** 2 / expected).sum())
            p = float(stats.chi2.sf(chi2, BINS - 1))
            cov50, cov90 = ranks[f"in50_{name}"].mean(), ranks[f"in90_{name}"].mean()
            rows.append({"model_design": label, "parameter": name, "replications": n, "chi2_p": p,
                         "coverage50": cov50, "coverage50_mcse": np.sqrt(0.25 / n),
                         "coverage90": cov90, "coverage90_mcse": np.sqrt(0.09 / n),
                         "divergent_reps": int((ranks["divergences"] > 0).sum()),
                         "max_r_hat": float(ranks["max_r_hat"].max()), **r_hat_counts})
            ax.axhspan(lo, hi, color="0.85")
            ax.axhline(expected, color="0.5", lw=0.8)
            ax.bar(np.arange(BINS), counts, width=0.9, color="C0")
            ax.set_title(f"{name}\np={p:.2f}, 50%:{cov50:.2f}, 90%:{cov90:.2f}", fontsize=8)
            ax.set_xticks([])
        fig.suptitle(f"SBC rank histograms: {label} ({n} replications; grey: 99% band for uniform ranks)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / f"{label}_ranks.png", dpi=110)
        plt.close(fig)
    table = family_wise(pd.DataFrame(rows))
    table.to_csv(out / "sbc_summary.csv", index=False)
    return table


def family_wise(table: pd.DataFrame) -> pd.DataFrame:
    """Each coverage's exact two-sided binomial p-value against its nominal level, and every test of a
    model and design (one uniformity and two coverage tests per parameter: 24 for eight parameters)
    adjusted together by Holm. With that many tests, one coverage 2-2.5 MC SE off its level is expected
    now and then (each such deviation alone has p 0.01-0.05); the adjusted p-values say whether the
    design as a whole departs from calibration by more than chance, the unadjusted ones where to look."""
    from scipy import stats

    table = table.copy()
    n = table["replications"].to_numpy()
    for level in (50, 90):
        hits = np.rint(table[f"coverage{level}"].to_numpy() * n).astype(int)
        table[f"coverage{level}_p"] = [stats.binomtest(int(k), int(m), level / 100).pvalue for k, m in zip(hits, n)]
    tests = ["chi2_p", "coverage50_p", "coverage90_p"]
    for _, group in table.groupby("model_design"):
        adjusted = holm(group[tests].to_numpy().ravel()).reshape(len(group), len(tests))
        for k, name in enumerate(tests):
            table.loc[group.index, f"{name}_holm"] = adjusted[:, k]
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="oral1cmt", help="a bundled model's name or a spec file")
    parser.add_argument("--design", choices=list(DESIGNS), default="rich")
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20181103)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sbc"))
    parser.add_argument("--parameterization", choices=["centered", "noncentered"],
                        help="force the IIV parameterisation (default: the spec's, 'auto')")
    parser.add_argument("--target-accept", type=float, default=0.8)
    parser.add_argument("--summarise", metavar="DIR", help="only summarise the rank files in DIR")
    parser.add_argument("--prior-check", action="store_true", help="only compare draw_prior with NUTS on the prior")
    parser.add_argument("--truth-check", action="store_true", help="only check the truths in OUT against the prior")
    parser.add_argument("--pool", nargs="+", metavar="DIR",
                        help="summarise (or --truth-check) the rank files of these folders pooled, into --out")
    args = parser.parse_args()
    if args.pool:
        out, folders = Path(args.out), [Path(d) for d in args.pool]
        if out.resolve() in {d.resolve() for d in folders}:
            parser.error("--pool writes its summary to --out, which must not be one of the pooled folders")
        out.mkdir(parents=True, exist_ok=True)
        table = (truth_check(args.model, out, args.seed, folders=folders) if args.truth_check
                 else summarise(out, folders))
    elif args.prior_check:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table = prior_check(args.model, out, args.seed)
    elif args.truth_check:
        table = truth_check(args.model, Path(args.out), args.seed)
    elif args.summarise:
        table = summarise(Path(args.summarise))
    else:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        run(args.model, args.design, args.reps, out, args.seed, args.chains, args.warmup, args.samples,
            args.parameterization, args.target_accept)
        table = summarise(out)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
