// SVG line charts and the text helpers of the HTML report.
#pragma once
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

// The i-th series colour (the palette repeats).
std::string chart_color(size_t i);

struct ChartSeries {
  std::string name;
  std::string color;
  bool dashed = false;
  std::vector<double> x, y, err;  // err: ± bar per point (may be empty)
};

// One <svg> chart over M (log2 x axis): log10 y axis when log_y, else 0..100+
// percent with the 100 % roofline drawn. `cls` is added to the svg's class.
std::string svg_chart(const std::string& title, const std::string& ylabel, const std::vector<ChartSeries>& series,
                      bool log_y, const std::string& cls);

}  // namespace moe
