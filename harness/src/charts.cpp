// SVG line charts for the HTML report (inline, no scripts).
#include "moe/charts.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>

#include <fmt/format.h>

namespace moe {

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_number(double v) {
  if (!std::isfinite(v)) return "-";
  if (v != 0 && (std::fabs(v) >= 1e6 || std::fabs(v) < 1e-3)) return fmt::format("{:.3g}", v);
  if (std::fabs(v) >= 100) return fmt::format("{:.1f}", v);
  return fmt::format("{:.4g}", v);
}

// Axis labels: integers without decimals (M = 4096, not 4096.0).
std::string format_tick(double v) {
  if (std::isfinite(v) && std::fabs(v) < 1e15 && v == std::floor(v)) return fmt::format("{}", static_cast<int64_t>(v));
  return format_number(v);
}

std::string chart_color(size_t i) {
  static const char* const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                        "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return palette[i % std::size(palette)];
}

std::string svg_chart(const std::string& title, const std::string& ylabel, const std::vector<ChartSeries>& series,
                      bool log_y, const std::string& cls) {
  const double W = 540, L = 66, R = 16, T = 30, PH = 220, B = 44;
  // Data ranges.
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  std::set<double> xs;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!(s.x[i] > 0) || !std::isfinite(s.y[i]) || (log_y && !(s.y[i] > 0))) continue;
      xs.insert(s.x[i]);
      xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
      const double e = i < s.err.size() && std::isfinite(s.err[i]) ? s.err[i] : 0;
      const double lo = log_y && s.y[i] - e <= 0 ? s.y[i] : s.y[i] - e;
      ymin = std::min(ymin, lo), ymax = std::max(ymax, s.y[i] + e);
    }
  const int legend_rows = static_cast<int>((series.size() + 1) / 2);
  const double H = T + PH + B + 18.0 * legend_rows + 6;
  std::string o = fmt::format(
      "<svg class=\"chart {}\" role=\"img\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<title>{}</title>\n",
      cls, W, H, W, H, html_escape(title));
  o += fmt::format("<text x=\"{}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>\n", L, html_escape(title));
  const double PW = W - L - R;
  o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#999\"/>\n", L, T, PW, PH);
  if (xs.empty()) {
    o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">no data</text>\n</svg>\n", L + PW / 2, T + PH / 2);
    return o;
  }
  double lx0 = std::log2(xmin), lx1 = std::log2(xmax);
  if (lx1 - lx0 < 1e-9) lx0 -= 1, lx1 += 1;
  const double xpad = (lx1 - lx0) * 0.06;
  lx0 -= xpad, lx1 += xpad;
  auto X = [&](double x) { return L + (std::log2(x) - lx0) / (lx1 - lx0) * PW; };
  double y0, y1;
  if (log_y) {
    y0 = std::log10(ymin), y1 = std::log10(ymax);
    if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
    const double pad = (y1 - y0) * 0.08;
    y0 -= pad, y1 += pad;
  } else {
    y0 = 0;
    y1 = std::max(100.0, ymax * 1.05);
  }
  auto Y = [&](double y) {
    const double v = log_y ? std::log10(y) : y;
    return T + PH - (v - y0) / (y1 - y0) * PH;
  };
  // X ticks: the measured M values, or powers of two when there are many.
  std::vector<double> xt(xs.begin(), xs.end());
  if (xt.size() > 10) {
    xt.clear();
    const int a = static_cast<int>(std::ceil(std::log2(xmin))), b = static_cast<int>(std::floor(std::log2(xmax)));
    const int step = std::max(1, (b - a + 9) / 10);
    for (int e = a; e <= b; e += step) xt.push_back(std::ldexp(1.0, e));
  }
  for (double x : xt) {
    const double px = X(x);
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#e4e4e4\"/>", px, T, px, T + PH);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px, T + PH + 14, format_tick(x));
  }
  // Y ticks.
  std::vector<double> yt;
  if (log_y) {
    for (int e = static_cast<int>(std::floor(y0)); e <= static_cast<int>(std::ceil(y1)); ++e)
      for (double d : {1.0, 2.0, 5.0}) {
        const double v = d * std::pow(10.0, e);
        if (std::log10(v) >= y0 && std::log10(v) <= y1) yt.push_back(v);
      }
    if (yt.size() < 3) {  // a narrow range: 4 ticks evenly spaced in log space, 2 significant digits
      yt.clear();
      for (int j = 0; j < 4; ++j) {
        const double v = std::pow(10.0, y0 + (y1 - y0) * (0.1 + 0.8 * j / 3.0));
        const double mag = std::pow(10.0, std::floor(std::log10(v)) - 1);
        yt.push_back(std::round(v / mag) * mag);
      }
    }
    if (yt.size() > 12) {
      std::vector<double> k;
      for (double v : yt)
        if (std::fabs(std::log10(v) - std::round(std::log10(v))) < 1e-9) k.push_back(v);
      yt = k;
    }
  } else {
    double step = y1 > 400 ? 100 : y1 > 200 ? 50 : 20;
    while (y1 / step > 10) step *= 10;  // a wild value in the input keeps about ten ticks
    for (double v = 0; v <= y1 + 1e-9; v += step) yt.push_back(v);
  }
  for (double v : yt) {
    const double py = Y(v);
    o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>", L, py, L + PW, py);
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", L - 5, py + 4, format_tick(v));
  }
  if (!log_y)  // the roofline
    o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#444\" stroke-dasharray=\"2 3\"/>\n",
                     L, Y(100), L + PW, Y(100));
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">M (tokens)</text>\n", L + PW / 2, T + PH + 32);
  o += fmt::format("<text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", T + PH / 2,
                   html_escape(ylabel));
  // Series.
  for (const auto& s : series) {
    std::vector<std::pair<double, size_t>> idx;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (s.x[i] > 0 && std::isfinite(s.y[i]) && (!log_y || s.y[i] > 0)) idx.emplace_back(s.x[i], i);
    std::sort(idx.begin(), idx.end());
    std::string pts;
    for (auto [x, i] : idx) pts += fmt::format("{:.1f},{:.1f} ", X(x), Y(s.y[i]));
    if (idx.size() > 1)
      o += fmt::format("<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n",
                       s.color, s.dashed ? " stroke-dasharray=\"6 4\"" : "", pts);
    for (auto [x, i] : idx) {
      const double e = i < s.err.size() && std::isfinite(s.err[i]) ? s.err[i] : 0;
      if (e > 0) {
        const double lo = log_y && s.y[i] - e <= 0 ? s.y[i] : s.y[i] - e;
        o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\"/>", X(x), Y(lo),
                         Y(s.y[i] + e), s.color);
      }
      o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: M={} {}{}</title></circle>\n",
                       X(x), Y(s.y[i]), s.color, html_escape(s.name), format_tick(x), format_number(s.y[i]),
                       e > 0 ? " ± " + format_number(e) : "");
    }
  }
  // Legend, two entries per row.
  for (size_t k = 0; k < series.size(); ++k) {
    const double lx = L + (k % 2) * (PW / 2), ly = T + PH + B + 18.0 * static_cast<double>(k / 2);
    o += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>", lx, ly, lx + 22,
                     ly, series[k].color, series[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
    o += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", lx + 28, ly + 4, html_escape(series[k].name));
  }
  o += "</svg>\n";
  return o;
}

}  // namespace moe
