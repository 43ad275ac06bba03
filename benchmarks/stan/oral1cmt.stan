// poppk's oral1cmt / oral1cmt_additive model, written the straightforward way: every observation sums
// the closed-form contribution of every dose given before it. Same priors, same parameterisation
// (IIV centred for the parameters poppk samples centred, non-centred for the others), same soft wall
// against flip-flop (KA > CL/V), same BLQ likelihood (M3). Data: doses expanded one record per dose.
functions {
  real conc1(real t, real dose, real cl, real v, real ka) {
    real k = cl / v;
    return dose * ka / (v * (ka - k)) * (exp(-k * t) - exp(-ka * t));
  }
}
data {
  int<lower=1> N;                      // subjects
  int<lower=1> D;                      // doses (all subjects)
  array[N] int<lower=1> dose_start;      // subject i's doses: dose_start[i] .. dose_end[i]
  array[N] int<lower=0> dose_end;
  vector[D] dose_time;
  vector[D] dose_amt;
  int<lower=1> M;                      // fitted records
  array[M] int<lower=1, upper=N> obs_id;
  vector[M] obs_time;
  vector[M] dv;                        // LLOQ where censored
  array[M] int<lower=0, upper=1> blq;
  real scale;                          // dose unit / L -> concentration unit
  int<lower=0, upper=1> additive;      // 1: additive error (sigma); 0: exponential (log scale)
  real sigma_scale;                    // residual SD prior: half-normal scale or log-normal median
  real<lower=0> sigma_sd_log;          // > 0: log-normal prior (median sigma_scale); 0: half-normal (scale sigma_scale)
  array[3] int<lower=0, upper=1> centred;   // CL, V, KA: centred (1) or non-centred (0) IIV
  vector[3] prior_median;
  vector[3] prior_sd;
  real omega_scale;
}
parameters {
  vector[3] log_theta;                 // log CL, log V, log KA
  vector<lower=0>[3] omega;
  matrix[N, 3] u;                      // centred: log individual value; non-centred: standard normal
  real<lower=0> sigma;
}
transformed parameters {
  matrix[N, 3] log_ind;
  for (p in 1:3) {
    if (centred[p] == 1) log_ind[, p] = u[, p];
    else log_ind[, p] = log_theta[p] + omega[p] * u[, p];
  }
}
model {
  vector[N] cl = exp(log_ind[, 1]);
  vector[N] v = exp(log_ind[, 2]);
  vector[N] ka = exp(log_ind[, 3]);
  log_theta ~ normal(log(prior_median), prior_sd);  // log-normal priors, sampled on the log scale as in NumPyro
  omega ~ normal(0, omega_scale);
  if (sigma_sd_log > 0) sigma ~ lognormal(log(sigma_scale), sigma_sd_log);
  else sigma ~ normal(0, sigma_scale);
  for (p in 1:3) {
    if (centred[p] == 1) u[, p] ~ normal(log_theta[p], omega[p]);
    else u[, p] ~ std_normal();
  }
  target += log_inv_logit(10 * (log_theta[3] - (log_theta[1] - log_theta[2])));
  target += sum(log_inv_logit(10 * (log(ka) - log(cl ./ v))));
  for (j in 1:M) {
    real c = 0;
    int i = obs_id[j];
    for (d in dose_start[i]:dose_end[i]) {
      if (dose_time[d] < obs_time[j])
        c += conc1(obs_time[j] - dose_time[d], dose_amt[d], cl[i], v[i], ka[i]);
    }
    c = fmax(scale * c, 1e-30);
    if (additive == 1) {
      if (blq[j] == 1) target += normal_lcdf(dv[j] | c, sigma);
      else target += normal_lpdf(dv[j] | c, sigma);
    } else {
      if (blq[j] == 1) target += normal_lcdf(log(dv[j]) | log(c), sigma);
      else target += normal_lpdf(log(dv[j]) | log(c), sigma);
    }
  }
}
