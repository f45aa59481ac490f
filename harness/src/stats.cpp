// Mann-Whitney U test and geometric mean.
//
// Notation: samples a (n_a values) and b (n_b values), N = n_a + n_b. Pool
// them and rank 1..N; tied values share the mean of their positions (mid-ranks).
// R_a = sum of a's ranks; U_a = R_a - n_a (n_a + 1) / 2 = the number of pairs
// (a_i, b_j) with a_i > b_j, a tie counting 1/2. Under "same distribution"
// every choice of which n_a of the N ranks belong to a is equally likely, so
// E[R_a] = n_a (N + 1) / 2, E[U_a] = n_a n_b / 2.
//
// Exact (small N): the permutation distribution of R_a over all C(N, n_a)
// choices, counted by dynamic programming over the (mid-)ranks of the pooled
// data, so ties are handled exactly. Two-sided p = P(|R - E[R]| >= |R_a - E[R]|).
// Without ties the distribution is symmetric and this is 2 P(U <= min(U_a, U_b)).
//
// Normal approximation (large N), with tie correction and continuity correction:
//   var(U) = n_a n_b / 12 * ((N + 1) - sum_t (t^3 - t) / (N (N - 1)))
//   (t: the size of each group of tied values),
//   z = max(0, |U_a - n_a n_b / 2| - 1/2) / sqrt(var(U)),  p = erfc(z / sqrt(2)).
#include "moe/stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numeric>

#include "moe/error.hpp"

namespace moe {
namespace {

void require_samples(const std::vector<double>& a, const std::vector<double>& b) {
  MOE_REQUIRE(!a.empty() && !b.empty(), "rank test: both samples need at least one value");
  for (const auto* s : {&a, &b})
    for (double v : *s) MOE_REQUIRE(std::isfinite(v), "rank test: samples must be finite");
}

struct PooledRanks {
  std::vector<int64_t> doubled;  // 2 x mid-rank of each value, a's first then b's (integers)
  double tie_term = 0;           // sum over tie groups of t^3 - t
};

PooledRanks pooled_ranks(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> v(a);
  v.insert(v.end(), b.begin(), b.end());
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
  PooledRanks r;
  r.doubled.resize(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    while (j < order.size() && v[order[j]] == v[order[i]]) ++j;
    // Positions i+1 .. j share the mid-rank (i + 1 + j) / 2.
    for (size_t k = i; k < j; ++k) r.doubled[order[k]] = static_cast<int64_t>(i + 1 + j);
    const double t = static_cast<double>(j - i);
    r.tie_term += t * t * t - t;
    i = j;
  }
  return r;
}

double u_of_a(const PooledRanks& r, size_t n_a) {
  int64_t s = 0;
  for (size_t i = 0; i < n_a; ++i) s += r.doubled[i];
  return static_cast<double>(s) / 2.0 - static_cast<double>(n_a * (n_a + 1)) / 2.0;
}

}  // namespace

RankTestResult mann_whitney_u_exact(const std::vector<double>& a, const std::vector<double>& b) {
  require_samples(a, b);
  const PooledRanks r = pooled_ranks(a, b);
  const size_t n_a = a.size(), n = r.doubled.size();
  const int64_t max_sum = static_cast<int64_t>(n * (n + 1));  // every doubled rank summed
  // count[k][s]: subsets of size k of the ranks seen so far with doubled sum s
  // (doubles: C(N, n_a) passes 2^64 long before the cost matters).
  std::vector<std::vector<double>> count(n_a + 1, std::vector<double>(static_cast<size_t>(max_sum) + 1, 0.0));
  count[0][0] = 1;
  for (size_t i = 0; i < n; ++i) {
    const int64_t d = r.doubled[i];
    for (size_t k = std::min(i + 1, n_a); k >= 1; --k)
      for (int64_t s = max_sum; s >= d; --s) count[k][static_cast<size_t>(s)] += count[k - 1][static_cast<size_t>(s - d)];
  }
  int64_t observed = 0;
  for (size_t i = 0; i < n_a; ++i) observed += r.doubled[i];
  const int64_t center = static_cast<int64_t>(n_a * (n + 1));  // 2 x E[R_a]
  const int64_t dist = std::llabs(observed - center);
  double tail = 0, total = 0;
  for (int64_t s = 0; s <= max_sum; ++s) {
    const double c = count[n_a][static_cast<size_t>(s)];
    total += c;
    if (std::llabs(s - center) >= dist) tail += c;
  }
  return {u_of_a(r, n_a), std::min(1.0, tail / total), true};
}

RankTestResult mann_whitney_u_normal(const std::vector<double>& a, const std::vector<double>& b) {
  require_samples(a, b);
  const PooledRanks r = pooled_ranks(a, b);
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size()), n = na + nb;
  const double u = u_of_a(r, a.size());
  const double var = na * nb / 12.0 * ((n + 1) - (n > 1 ? r.tie_term / (n * (n - 1)) : 0.0));
  if (!(var > 0)) return {u, 1.0, false};  // every value equal: no evidence either way
  const double z = std::max(0.0, std::abs(u - na * nb / 2.0) - 0.5) / std::sqrt(var);
  return {u, std::min(1.0, std::erfc(z / std::sqrt(2.0))), false};
}

RankTestResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() + b.size() <= static_cast<size_t>(kRankTestExactMaxTotal) ? mann_whitney_u_exact(a, b)
                                                                               : mann_whitney_u_normal(a, b);
}

double rank_test_min_p(int n_a, int n_b) {
  if (n_a < 1 || n_b < 1) return 1.0;
  // C(n_a + n_b, n_a) built as C(n_b + 1, 1), C(n_b + 2, 2), ...: every step an
  // integer, exact in a double up to 2^53 (so 2 / 20 is exactly the double 0.1).
  double c = 1;
  for (int i = 1; i <= n_a; ++i) c = c * (n_b + i) / i;
  return std::min(1.0, 2.0 / c);
}

int rank_test_min_repetitions(double alpha) {
  MOE_REQUIRE(alpha > 0 && alpha < 1, "alpha must be in (0, 1)");
  int n = 2;
  while (!(rank_test_min_p(n, n) < alpha)) ++n;  // min p falls about 4x per repetition: a few steps
  return n;
}

double geometric_mean(const std::vector<double>& x) {
  MOE_REQUIRE(!x.empty(), "geometric mean of no values");
  double s = 0;
  for (double v : x) {
    MOE_REQUIRE(v > 0 && std::isfinite(v), "geometric mean needs positive finite values");
    s += std::log(v);
  }
  return std::exp(s / static_cast<double>(x.size()));
}

double median(std::vector<double> x) {
  MOE_REQUIRE(!x.empty(), "median: no values");
  std::sort(x.begin(), x.end());
  const size_t h = x.size() / 2;
  return x.size() % 2 ? x[h] : (x[h - 1] + x[h]) / 2.0;
}

std::vector<size_t> smallest_indices(const std::vector<double>& x, size_t n) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  idx.resize(std::min(n, idx.size()));
  return idx;
}

}  // namespace moe
