// SVG line charts and the text helpers of the HTML report.
#pragma once
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view s);

// A number for a table cell: "-" when not finite, 3-4 significant digits.
std::string format_number(double v);
// An axis label: integers without decimals (M = 4096, not 4096.0).
std::string format_tick(double v);

// A chart holds at most this many series: one colour each, told apart also by
// readers who do not see every colour.
inline constexpr size_t kMaxChartSeries = 8;
// The i-th colour of a colour-blind-safe palette (Okabe and Ito's eight), i < kMaxChartSeries.
std::string chart_color(size_t i);

struct ChartSeries {
  std::string name;
  std::string color;
  bool dashed = false;            // a baseline: drawn dashed in the colour of the series it is compared with
  std::vector<double> x, y, err;  // err: ± bar per point (may be empty)
};

struct ChartSpec {
  std::string title;
  std::string x_label = "M (tokens)";  // the x axis is log2
  std::string y_label;
  bool log_y = false;                  // else linear from 0
  double reference_y = NAN;            // a dotted line across the plot (100 % of the floor, speedup 1)
  std::string css_class;               // added to the svg's class
};

// One <svg> chart; each point carries its value in a <title> (shown on hover).
// Legend entries sit one per row, or two when every name fits half the width;
// a name too long for its column is cut with "…" and given whole in its <title>.
// "" when no series has a point to draw.
std::string svg_chart(const ChartSpec& spec, const std::vector<ChartSeries>& series);

// Splits series into charts of at most `max_series` each. `dims[i]` describes
// series i by values in a fixed order, major first (e.g. model, benchmark,
// parameters, source): a set with too many series is split on its first
// dimension that varies, each part split again as needed, and the parts are
// then packed back together, first fit, while they fit. Returns the series
// indexes of each chart, in input order within a chart.
std::vector<std::vector<size_t>> group_series(const std::vector<std::vector<std::string>>& dims, size_t max_series);

}  // namespace moe
