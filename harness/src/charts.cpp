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
  // Okabe & Ito, "Color Universal Design": distinguishable with every common colour-vision deficiency.
  static const char* const palette[kMaxChartSeries] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                       "#E69F00", "#56B4E9", "#000000", "#F0E442"};
  return palette[i % kMaxChartSeries];
}

namespace {

// Characters of UTF-8 text (not bytes): widths below are estimated per character.
size_t text_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// `s` cut to at most `max_chars` characters, ending in "…" when cut.
std::string fit_text(const std::string& s, size_t max_chars) {
  if (text_chars(s) <= max_chars) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80 && ++n > (max_chars > 0 ? max_chars - 1 : 0)) break;
    out += s[i];
  }
  return out + "…";
}

// A generous width of one character of sans-serif text: labels laid out with it do not collide.
constexpr double kCharWidth11 = 7.0, kCharWidth13Bold = 8.6;

// Tick step of about five ticks over `span`: 1, 2 or 5 times a power of ten.
double nice_step(double span) {
  const double raw = span / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

}  // namespace

std::string svg_chart(const ChartSpec& spec, const std::vector<ChartSeries>& series) {
  const bool log_y = spec.log_y;
  const double W = 560, L = 66, R = 16, T = 30, PH = 220, B = 44, row_h = 16;
  const double PW = W - L - R;
  auto usable = [&](const ChartSeries& s, size_t i) {
    return i < s.y.size() && s.x[i] > 0 && std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!log_y || s.y[i] > 0);
  };
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  std::set<double> xs;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s, i)) continue;
      xs.insert(s.x[i]);
      xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
      const double e = i < s.err.size() && std::isfinite(s.err[i]) ? s.err[i] : 0;
      const double lo = log_y && s.y[i] - e <= 0 ? s.y[i] : s.y[i] - e;
      ymin = std::min(ymin, lo), ymax = std::max(ymax, s.y[i] + e);
    }
  if (xs.empty()) return "";

  // Legend: two columns when every entry fits half the width, else one; long names cut.
  const double swatch = 28;
  size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, text_chars(s.name));
  const bool two_cols = series.size() > 1 && swatch + kCharWidth11 * static_cast<double>(longest) <= PW / 2 - 10;
  const double col_w = two_cols ? PW / 2 : PW;
  const size_t max_chars = static_cast<size_t>(std::max(4.0, (col_w - swatch - 10) / kCharWidth11));
  const size_t cols = two_cols ? 2 : 1;
  const size_t legend_rows = (series.size() + cols - 1) / cols;
  const double H = T + PH + B + row_h * static_cast<double>(legend_rows) + 8;

  std::string o = fmt::format(
      "<svg class=\"chart {}\" role=\"img\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<title>{}</title>\n",
      spec.css_class, W, H, W, H, html_escape(spec.title));
  o += fmt::format("<text class=\"chart-title\" x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
                   html_escape(fit_text(spec.title, static_cast<size_t>((W - 16) / kCharWidth13Bold))));
  o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#999\"/>\n", L, T, PW, PH);
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
    y1 = std::max(std::isfinite(spec.reference_y) ? spec.reference_y * 1.1 : 0.0, ymax * 1.08);
    if (!(y1 > 0)) y1 = 1;
  }
  auto Y = [&](double y) {
    const double v = log_y ? std::log10(y) : y;
    return T + PH - (v - y0) / (y1 - y0) * PH;
  };
  // X ticks: the measured values, or powers of two when there are many.
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
    const double step = nice_step(y1);  // about five ticks, whatever the values
    for (int j = 0; j * step <= y1 + 1e-9 * y1; ++j) yt.push_back(j * step);
  }
  for (double v : yt) {
    const double py = Y(v);
    o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>", L, py, L + PW, py);
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", L - 5, py + 4, format_tick(v));
  }
  if (!log_y && std::isfinite(spec.reference_y))
    o += fmt::format("<line class=\"reference\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#444\" "
                     "stroke-dasharray=\"2 3\"/>\n",
                     L, Y(spec.reference_y), L + PW, Y(spec.reference_y));
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", L + PW / 2, T + PH + 32,
                   html_escape(spec.x_label));
  o += fmt::format("<text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", T + PH / 2,
                   html_escape(spec.y_label));
  // Series.
  const std::string x_name = spec.x_label.substr(0, spec.x_label.find(' '));
  for (const auto& s : series) {
    std::vector<std::pair<double, size_t>> idx;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (usable(s, i)) idx.emplace_back(s.x[i], i);
    std::sort(idx.begin(), idx.end());
    std::string pts;
    for (auto [x, i] : idx) pts += fmt::format("{:.1f},{:.1f} ", X(x), Y(s.y[i]));
    if (idx.size() > 1)
      o += fmt::format("<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\">"
                       "<title>{}</title></polyline>\n",
                       s.color, s.dashed ? " stroke-dasharray=\"6 4\"" : "", pts, html_escape(s.name));
    for (auto [x, i] : idx) {
      const double e = i < s.err.size() && std::isfinite(s.err[i]) ? s.err[i] : 0;
      if (e > 0) {
        const double lo = log_y && s.y[i] - e <= 0 ? s.y[i] : s.y[i] - e;
        o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\"/>", X(x), Y(lo),
                         Y(s.y[i] + e), s.color);
      }
      o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"{}><title>{}: {}={} {}{}</title></circle>\n",
                       X(x), Y(s.y[i]), s.dashed ? 3.5 : 3, s.dashed ? "#fff" : s.color,
                       s.dashed ? fmt::format(" stroke=\"{}\" stroke-width=\"1.5\"", s.color) : "", html_escape(s.name),
                       html_escape(x_name), format_tick(x), format_number(s.y[i]),
                       e > 0 ? " ± " + format_number(e) : "");
    }
  }
  // Legend.
  for (size_t k = 0; k < series.size(); ++k) {
    const double lx = L + static_cast<double>(k % cols) * col_w, ly = T + PH + B + row_h * static_cast<double>(k / cols);
    o += fmt::format("<g class=\"legend-item\"><title>{}</title>", html_escape(series[k].name));
    o += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>", lx, ly, lx + 22,
                     ly, series[k].color, series[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
    o += fmt::format("<text x=\"{}\" y=\"{}\">{}</text></g>\n", lx + swatch, ly + 4,
                     html_escape(fit_text(series[k].name, max_chars)));
  }
  o += "</svg>\n";
  return o;
}

namespace {

void pack_first_fit(std::vector<std::vector<size_t>>& parts, size_t max_series) {
  std::vector<std::vector<size_t>> bins;
  for (auto& p : parts) {
    auto it = std::find_if(bins.begin(), bins.end(), [&](const auto& b) { return b.size() + p.size() <= max_series; });
    if (it == bins.end()) bins.push_back(std::move(p));
    else it->insert(it->end(), p.begin(), p.end());
  }
  for (auto& b : bins) std::sort(b.begin(), b.end());
  parts = std::move(bins);
}

std::vector<std::vector<size_t>> split_series(const std::vector<std::vector<std::string>>& dims, std::vector<size_t> idx,
                                              size_t dim_from, size_t max_series) {
  if (idx.size() <= max_series) return {idx};
  auto value = [&](size_t i, size_t d) { return d < dims[i].size() ? dims[i][d] : std::string(); };
  size_t ndims = 0;
  for (size_t i : idx) ndims = std::max(ndims, dims[i].size());
  for (size_t d = dim_from; d < ndims; ++d) {
    std::vector<std::string> values;
    std::vector<std::vector<size_t>> parts;
    for (size_t i : idx) {
      const auto it = std::find(values.begin(), values.end(), value(i, d));
      if (it == values.end()) values.push_back(value(i, d)), parts.push_back({i});
      else parts[static_cast<size_t>(it - values.begin())].push_back(i);
    }
    if (parts.size() < 2) continue;
    std::vector<std::vector<size_t>> out;
    for (auto& p : parts)
      for (auto& q : split_series(dims, std::move(p), d + 1, max_series)) out.push_back(std::move(q));
    pack_first_fit(out, max_series);
    return out;
  }
  std::vector<std::vector<size_t>> out;  // alike in every dimension: cut in order
  for (size_t k = 0; k < idx.size(); k += max_series)
    out.emplace_back(idx.begin() + static_cast<std::ptrdiff_t>(k),
                     idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), k + max_series)));
  return out;
}

}  // namespace

std::vector<std::vector<size_t>> group_series(const std::vector<std::vector<std::string>>& dims, size_t max_series) {
  if (dims.empty()) return {};
  std::vector<size_t> all(dims.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return split_series(dims, std::move(all), 0, std::max<size_t>(1, max_series));
}

}  // namespace moe
