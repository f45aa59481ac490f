// Small statistics for comparing benchmark runs: the two-sided Mann-Whitney U
// test over repetitions, the geometric mean of time ratios, medians, and the
// fastest of a list of times.
#pragma once
#include <cstddef>
#include <vector>

namespace moe {

struct RankTestResult {
  double u_a = 0;      // pairs (a, b) with a > b, a tie counting one half
  double p = 1;        // two-sided p-value
  bool exact = false;  // from the exact permutation distribution (else the normal approximation)
};

// Two-sided Mann-Whitney U test of "a and b come from the same distribution".
// Exact when a.size() + b.size() <= kRankTestExactMaxTotal, else the normal
// approximation. Both samples non-empty and finite (InputError otherwise).
RankTestResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b);
RankTestResult mann_whitney_u_exact(const std::vector<double>& a, const std::vector<double>& b);
RankTestResult mann_whitney_u_normal(const std::vector<double>& a, const std::vector<double>& b);
inline constexpr int kRankTestExactMaxTotal = 50;

// The smallest two-sided p-value any data can give with n_a and n_b
// repetitions: complete separation, 2 / C(n_a + n_b, n_a) (at most 1).
double rank_test_min_p(int n_a, int n_b);

// The smallest n >= 2 for which n vs n repetitions can give p < alpha.
int rank_test_min_repetitions(double alpha);

// exp(mean(log x)); every x > 0 and finite, at least one (InputError otherwise).
double geometric_mean(const std::vector<double>& x);

// The median (the mean of the two middle values for an even count); at least one value
// (InputError otherwise).
double median(std::vector<double> x);

// The indices of the n smallest values of x (all of them when n >= x.size()), smallest
// first; equal values in index order.
std::vector<size_t> smallest_indices(const std::vector<double>& x, size_t n);

}  // namespace moe
