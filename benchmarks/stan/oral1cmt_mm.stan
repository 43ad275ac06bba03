// poppk's oral1cmt_mm model in Stan: Michaelis-Menten elimination integrated with ode_rk45 segment by
// segment between events (doses and samples, sorted as poppk sorts them). Same priors, parameterisation,
// soft flip-flop wall (on VMAX*scale/(KM V)), exponential error and M3 BLQ likelihood as poppk.
functions {
  vector mm_rhs(real t, vector y, real ka, real vmax, real km, real v, real scale) {
    vector[2] dy;
    real c = scale * y[2] / v;
    dy[1] = -ka * y[1];
    dy[2] = ka * y[1] - vmax * c / (km + c);
    return dy;
  }
}
data {
  int<lower=1> N;
  int<lower=1> E;                          // events, sorted within subject
  array[N] int<lower=1> ev_start;
  array[N] int<lower=1> ev_end;
  vector[E] ev_time;
  vector[E] ev_amt;                        // dose amount (0 for samples)
  array[E] int<lower=0> ev_obs;            // index of the fitted record, 0 for doses and unfitted samples
  int<lower=1> M;
  vector[M] dv;                            // LLOQ where censored
  array[M] int<lower=0, upper=1> blq;
  real scale;
  vector[4] prior_median;                  // VMAX, KM, V, KA
  vector[4] prior_sd;
  array[3] int<lower=0, upper=1> centred;  // VMAX, V, KA
  real omega_scale;
  real sigma_scale;
  real<lower=0> sigma_sd_log;          // > 0: log-normal prior (median sigma_scale); 0: half-normal (scale sigma_scale)
}
parameters {
  vector[4] log_theta;
  vector<lower=0>[3] omega;
  matrix[N, 3] u;
  real<lower=0> sigma;
}
transformed parameters {
  matrix[N, 3] log_ind;
  {
    array[3] int which = {1, 3, 4};
    for (p in 1:3) {
      if (centred[p] == 1) log_ind[, p] = u[, p];
      else log_ind[, p] = log_theta[which[p]] + omega[p] * u[, p];
    }
  }
}
model {
  vector[N] vmax = exp(log_ind[, 1]);
  vector[N] v = exp(log_ind[, 2]);
  vector[N] ka = exp(log_ind[, 3]);
  real km = exp(log_theta[2]);
  vector[M] c;
  log_theta ~ normal(log(prior_median), prior_sd);
  omega ~ normal(0, omega_scale);
  if (sigma_sd_log > 0) sigma ~ lognormal(log(sigma_scale), sigma_sd_log);
  else sigma ~ normal(0, sigma_scale);
  {
    array[3] int which = {1, 3, 4};
    for (p in 1:3) {
      if (centred[p] == 1) u[, p] ~ normal(log_theta[which[p]], omega[p]);
      else u[, p] ~ std_normal();
    }
  }
  target += log_inv_logit(10 * (log_theta[4] - (log_theta[1] + log(scale) - log_theta[2] - log_theta[3])));
  target += sum(log_inv_logit(10 * (log(ka) - (log(vmax) + log(scale) - log(km) - log(v)))));
  for (i in 1:N) {
    vector[2] y = rep_vector(0, 2);
    real t = ev_time[ev_start[i]];
    for (e in ev_start[i]:ev_end[i]) {
      if (ev_time[e] > t) {
        y = ode_rk45(mm_rhs, y, t, {ev_time[e]}, ka[i], vmax[i], km, v[i], scale)[1];
        t = ev_time[e];
      }
      if (ev_amt[e] > 0) y[1] += ev_amt[e];
      if (ev_obs[e] > 0) c[ev_obs[e]] = fmax(scale * y[2] / v[i], 1e-30);
    }
  }
  for (j in 1:M) {
    if (blq[j] == 1) target += normal_lcdf(log(dv[j]) | log(c[j]), sigma);
    else target += normal_lpdf(log(dv[j]) | log(c[j]), sigma);
  }
}
