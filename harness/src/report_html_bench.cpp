// The benchmark parts of the report page: the first-screen summary, the
// ceilings, the charts of each family and the baseline ratio tables.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "moe/charts.hpp"
#include "moe/stats.hpp"
#include "report_html_parts.hpp"

namespace moe::report_html {
using nlohmann::json;

namespace {

double number_or_nan(const json& v) { return v.is_number() ? v.get<double>() : NAN; }

// A % of floor chart whose every point is below this is not drawn.
constexpr double kLowestChartedPct = 5;

// Points of one line: one benchmark (family, bench, model, parameters) of ours
// or of one baseline, over its x.
struct Series {
  std::string family, x_label, bench, model, params_text, source;  // source: "" ours, else the baseline's name
  json params = json::array();
  std::vector<const json*> points;
  bool is_layer() const { return source.empty() && bench.ends_with("layer") && x_label.starts_with("M"); }
  bool same_benchmark(const Series& o) const {
    return family == o.family && x_label == o.x_label && bench == o.bench && model == o.model && params_text == o.params_text;
  }
};

std::vector<Series> collect_series(const json& rep) {
  std::vector<Series> out;
  std::map<std::string, size_t> at;
  auto add = [&](const json& p, const std::string& source) {
    const std::string key = p["family"].get<std::string>() + "\t" + p["x_label"].get<std::string>() + "\t" +
                            p["bench"].get<std::string>() + "\t" + p["model"].get<std::string>() + "\t" +
                            p["params_text"].get<std::string>() + "\t" + source;
    auto [it, fresh] = at.emplace(key, out.size());
    if (fresh)
      out.push_back({p["family"].get<std::string>(), p["x_label"].get<std::string>(), p["bench"].get<std::string>(),
                     p["model"].get<std::string>(), p["params_text"].get<std::string>(), source, p["params"], {}});
    out[it->second].points.push_back(&p);
  };
  for (const auto& p : rep["bench"]["points"]) add(p, "");
  for (const auto& b : rep["baselines"])
    for (const auto& p : b["points"]) add(p, b["name"].get<std::string>());
  return out;
}

// The point of a series at x, or null.
const json* point_at(const Series& s, double x) {
  for (const json* p : s.points)
    if (number_or_nan((*p)["x"]) == x) return p;
  return nullptr;
}

std::string pct_cell(const json* p) {
  if (!p || !(*p)["pct_floor"].is_number()) return "<td class=\"num\">-</td>";
  const double pct = (*p)["pct_floor"].get<double>();
  const json& f = (*p)["floor"];
  std::string tip = fmt::format("{} µs measured; floor {} µs ({})", format_number((*p)["us"].get<double>()),
                                format_number(number_or_nan(f["us"])), f["bound"].get<std::string>());
  if (!f["note"].get<std::string>().empty()) tip += "; " + f["note"].get<std::string>();
  const double alpha = std::clamp(pct / 100.0, 0.0, 1.0) * 0.45;
  return fmt::format("<td class=\"num\" style=\"background:rgba(0,114,178,{:.2f})\" title=\"{}\">{:.0f} %{}</td>", alpha,
                     html_escape(tip), pct, f["note"].get<std::string>().empty() ? "" : "*");
}

std::string ratio_style(double r) {
  // Blue where ours is faster, vermillion where slower; stronger the further from 1.
  const double a = std::min(0.5, std::fabs(std::log2(r)) * 0.6);
  return r <= 1 ? fmt::format("background:rgba(0,114,178,{:.2f})", a) : fmt::format("background:rgba(213,94,0,{:.2f})", a);
}

std::string ratio_cell(double r, const std::string& tip) {
  if (!std::isfinite(r)) return "<td class=\"num\">-</td>";
  return fmt::format("<td class=\"num\" style=\"{}\" title=\"{}\">{:.2f}×</td>", ratio_style(r), html_escape(tip), r);
}

// The geometric mean of the cells that have a value (NaN when none has).
double geomean(const std::vector<double>& v) {
  std::vector<double> present;
  for (double x : v)
    if (std::isfinite(x) && x > 0) present.push_back(x);
  return present.empty() ? NAN : geometric_mean(present);
}

std::string series_row_name(const Series& s) { return s.params_text.empty() ? s.bench : s.bench + " " + s.params_text; }

}  // namespace

std::string summary_section(const json& rep) {
  std::string o = "<section id=\"summary\">\n";
  // What ran where.
  std::set<std::string> devices, revisions;
  for (const auto& d : rep["devices"])
    if (d.contains("name") && d["name"].is_string()) devices.insert(d["name"].get<std::string>());
  for (const auto& in : rep["inputs"]) {
    if (in.contains("context") && in["context"].contains("moe_device") && in["context"]["moe_device"].is_string() &&
        in["kind"] == "bench")
      devices.insert(in["context"]["moe_device"].get<std::string>());
    const std::string rev = in.value("git_revision", "");
    if (!rev.empty() && in["kind"] != "baseline") revisions.insert(rev);
  }
  auto joined = [](const std::set<std::string>& s, const char* none) {
    std::string t;
    for (const auto& x : s) t += (t.empty() ? "" : ", ") + x;
    return t.empty() ? std::string(none) : t;
  };
  o += fmt::format("<p class=\"lead\">Device: <b>{}</b> · code: <span class=\"mono\">{}</span> · generated {}</p>\n",
                   html_escape(joined(devices, "not recorded")), html_escape(joined(revisions, "not recorded")),
                   html_escape(rep.value("generated_at", "")));

  // Verification.
  const auto& vs = rep["verify"]["summary"];
  const int failed = vs["failed"].get<int>();
  o += fmt::format("<div class=\"verdict {}\"><b>Verification:</b> {} passed, {} failed, {} skipped.", failed ? "bad" : "good",
                   json_scalar_text(vs["passed"]), failed, json_scalar_text(vs["skipped"]));
  for (const auto& k : rep["verify"]["kernels"])
    o += fmt::format(" <span class=\"chip {}\">{} {}/{}{}</span>", k["failed"].get<int>() ? "fail" : "pass",
                     html_escape(k["kernel"].get<std::string>()), k["passed"].get<int>(),
                     k["passed"].get<int>() + k["failed"].get<int>() + k["skipped"].get<int>(),
                     k["failed"].get<int>() ? fmt::format(", {} failed", k["failed"].get<int>()) : "");
  o += "</div>\n";
  if (failed) {
    o += "<ul id=\"failed-cases\">\n";
    int shown = 0;
    for (const auto& c : rep["verify"]["cases"]) {
      if (c["status"] != "fail") continue;
      if (++shown > 8) break;
      std::string msg = json_scalar_text(c.value("message", json("")));
      if (msg.size() > 160) msg = msg.substr(0, 157) + "...";
      o += fmt::format("<li><b>{}</b> {}: {}</li>\n", html_escape(c["kernel"].get<std::string>()),
                       html_escape(c["name"].get<std::string>()), html_escape(msg));
    }
    if (failed > 8) o += fmt::format("<li>… and {} more (Details)</li>\n", failed - 8);
    o += "</ul>\n";
  }

  // Benchmarks.
  const auto& pts = rep["bench"]["points"];
  int files = 0;
  for (const auto& in : rep["inputs"]) files += in["kind"] == "bench";
  const size_t errors = rep["bench"]["errors"].size();
  o += fmt::format("<div class=\"verdict {}\"><b>Benchmarks:</b> {} points from {} file(s), {} reported an error.",
                   errors ? "bad" : "good", pts.size(), files, errors);
  for (const auto& b : rep["baselines"])
    o += fmt::format(" Baseline <b>{}</b>: {} point(s) matched ours{}.", html_escape(b["name"].get<std::string>()),
                     b["points"].size(), b["unmatched"].empty() ? "" : fmt::format(", {} not", b["unmatched"].size()));
  o += "</div>\n";

  // Layer points: % of floor, and ours ÷ each baseline.
  const auto series = collect_series(rep);
  std::vector<const Series*> layers;
  std::vector<std::string> models;
  for (const auto& s : series)
    if (s.is_layer() && std::find(models.begin(), models.end(), s.model) == models.end()) models.push_back(s.model);
  for (const auto& m : models)
    for (const auto& s : series)
      if (s.is_layer() && s.model == m) layers.push_back(&s);
  if (layers.empty()) {
    o += "<p class=\"note\">No full-layer benchmarks (<span class=\"mono\">*_layer</span>) among the inputs: per-kernel "
         "charts are under Benchmarks.</p>\n";
    return o + "</section>\n";
  }
  std::set<double> xs_set;
  for (const Series* s : layers)
    for (const json* p : s->points) xs_set.insert((*p)["x"].get<double>());
  const std::vector<double> xs(xs_set.begin(), xs_set.end());
  o += "<h3>Full MoE layer: % of its floor at each M";
  if (!rep["baselines"].empty()) o += ", and ours ÷ each baseline";
  o += "</h3>\n<table id=\"layer-summary\">\n<tr><th>layer</th><th>model</th><th>dtype</th>";
  for (double x : xs) o += fmt::format("<th class=\"num\">M={}</th>", format_tick(x));
  o += "<th class=\"num\">geomean</th></tr>\n";
  bool any_note = false;
  for (const Series* s : layers) {
    const std::string dtype = s->points.front()->value("dtype", "");
    o += fmt::format("<tr>{}{}{}", td(series_row_name(*s), "mono"), td(s->model), td(dtype));
    std::vector<double> pcts;
    for (double x : xs) {
      const json* p = point_at(*s, x);
      o += pct_cell(p);
      if (p && (*p)["pct_floor"].is_number()) pcts.push_back((*p)["pct_floor"].get<double>());
      any_note = any_note || (p && !(*p)["floor"]["note"].get<std::string>().empty());
    }
    const double g = geomean(pcts);
    o += std::isfinite(g) ? fmt::format("<td class=\"num\">{:.0f} %</td></tr>\n", g) : "<td class=\"num\">-</td></tr>\n";
    for (const auto& b : series) {
      if (b.source.empty() || !b.same_benchmark(*s)) continue;
      o += fmt::format("<tr class=\"vs\"><td colspan=\"3\">ours ÷ {}</td>", html_escape(b.source));
      std::vector<double> rs;
      for (double x : xs) {
        const json* p = point_at(b, x);
        const double r = p ? (*p)["ratio"].get<double>() : NAN;
        if (p) rs.push_back(r);
        o += ratio_cell(r, p ? fmt::format("ours {} µs, {} {} µs", format_number((*p)["ours_us"].get<double>()), b.source,
                                           format_number((*p)["us"].get<double>()))
                             : "");
      }
      o += ratio_cell(geomean(rs), "geometric mean") + "</tr>\n";
    }
  }
  o += "</table>\n<p class=\"note\">% of floor: the point's floor ÷ its measured time, 100 % = at the floor. The floor is "
       "the larger of the declared bytes ÷ measured read bandwidth and the declared FLOPs ÷ the measured peak of the "
       "layer's dtype (bf16, fp8 or int8; see Ceilings). Hover a cell for the times.";
  if (any_note) o += " * the compute floor is missing (no peak measured for that dtype): the bandwidth floor alone.";
  if (!rep["baselines"].empty()) o += " Ours ÷ baseline below 1: ours is faster.";
  o += "</p>\n</section>\n";
  return o;
}

std::string ceilings_table(const json& rep) {
  // A borrowed ceiling names its input briefly: the baseline's name, else the file name.
  std::map<std::string, std::string> short_name;
  for (const auto& in : rep["inputs"]) {
    const std::string path = in.value("path", "");
    short_name[path] = in["kind"] == "baseline" ? "baseline " + in["name"].get<std::string>()
                                                : path.substr(path.find_last_of('/') + 1);
  }
  std::string rows;
  for (const auto& in : rep["inputs"]) {
    if (!in.contains("ceilings")) continue;
    const auto& c = in["ceilings"];
    auto cell = [&](const char* key, const std::string& what) {
      if (!c[key].is_number()) return td("no " + what + " measured", "skip");
      std::string t = format_number(c[key].get<double>());
      if (c["from"].contains(key)) t += " (from " + short_name[c["from"][key].get<std::string>()] + ")";
      return td(t, "num");
    };
    const std::string who = in["kind"] == "baseline" ? "baseline " + in["name"].get<std::string>() : "ours";
    rows += fmt::format("<tr>{}{}{}{}{}{}{}</tr>\n", td(in.value("path", ""), "mono"), td(who), td(c.value("device", "")),
                        cell("read_gbps", "read bandwidth"), cell("bf16_tflops", "bf16 peak"),
                        cell("fp8_tflops", "fp8 peak"), cell("int8_tops", "int8 peak"));
  }
  if (rows.empty()) return "";
  return "<h3>Ceilings the floors use</h3>\n<table id=\"ceilings\">\n<tr><th>input</th><th>of</th><th>device</th>"
         "<th>read GB/s</th><th>bf16 TFLOP/s</th><th>fp8 TFLOP/s</th><th>int8 TOP/s</th></tr>\n" +
         rows +
         "</table>\n<p class=\"note\">Measured on the device by the benchmark executables (or the baseline's script); a "
         "ceiling an input lacks is taken from another input of the same device, as noted. A dtype without a measured peak "
         "has no compute floor: its points are held to the bandwidth floor alone.</p>\n";
}

std::string bench_charts(const json& rep) {
  const auto series = collect_series(rep);
  std::vector<std::string> families;
  for (const auto& s : series)
    if (std::find(families.begin(), families.end(), s.family) == families.end()) families.push_back(s.family);
  std::string o;
  if (!series.empty())
    o += "<p class=\"note\">Per benchmark family, over M (or MiB): time, % of floor (see the first table) and, where "
         "the benchmark records it, speedup over the bf16 layer. At most 8 series a chart; solid lines are ours, a "
         "dashed line is a baseline, in the colour of the series it is compared with. Hover a point for its value.</p>\n";
  for (const auto& fam : families) {
    o += fmt::format("<h3>{}</h3>\n", html_escape(fam.empty() ? "(no family)" : fam));
    std::vector<std::string> x_labels;
    for (const auto& s : series)
      if (s.family == fam && std::find(x_labels.begin(), x_labels.end(), s.x_label) == x_labels.end())
        x_labels.push_back(s.x_label);
    for (const auto& xl : x_labels) {
      std::vector<const Series*> in;
      for (const auto& s : series)
        if (s.family == fam && s.x_label == xl) in.push_back(&s);
      if (xl.empty()) {
        o += fmt::format("<p class=\"note\">{} benchmark(s) with neither M nor a MiB counter: not plotted, see Details.</p>\n",
                         in.size());
        continue;
      }
      // Dimensions, major first: model, benchmark, each parameter, source.
      std::vector<std::string> param_dims;
      auto dim_name = [](const json& kv, size_t pos) {
        const std::string k = kv[0].get<std::string>();
        return k.empty() ? fmt::format("#{}", pos) : k;
      };
      for (const Series* s : in)
        for (size_t i = 0; i < s->params.size(); ++i)
          if (std::find(param_dims.begin(), param_dims.end(), dim_name(s->params[i], i)) == param_dims.end())
            param_dims.push_back(dim_name(s->params[i], i));
      std::vector<std::vector<std::string>> dims;
      for (const Series* s : in) {
        std::vector<std::string> d{s->model, s->bench};
        for (const auto& pd : param_dims) {
          std::string v;
          for (size_t i = 0; i < s->params.size(); ++i)
            if (dim_name(s->params[i], i) == pd) {
              const std::string k = s->params[i][0].get<std::string>();
              v = k.empty() ? s->params[i][1].get<std::string>() : k + ":" + s->params[i][1].get<std::string>();
            }
          d.push_back(v);
        }
        d.push_back(s->source);
        dims.push_back(std::move(d));
      }
      for (const auto& group : group_series(dims, kMaxChartSeries)) {
        const size_t nd = dims[group.front()].size();
        std::vector<bool> varies(nd, false);
        for (size_t i : group)
          for (size_t d = 0; d < nd; ++d) varies[d] = varies[d] || dims[i][d] != dims[group.front()][d];
        std::string title = fam;
        for (size_t d = 0; d + 1 < nd; ++d)
          if (!varies[d] && !dims[group.front()][d].empty()) title += " · " + dims[group.front()][d];
        std::vector<std::string> base_labels;
        std::vector<ChartSeries> lat, floor, speed;
        double max_pct = -1;
        for (size_t i : group) {
          std::string base;
          for (size_t d = 0; d + 1 < nd; ++d)
            if (varies[d] && !dims[i][d].empty()) base += (base.empty() ? "" : " ") + dims[i][d];
          const Series& s = *in[i];
          auto at = std::find(base_labels.begin(), base_labels.end(), base);
          if (at == base_labels.end()) at = base_labels.insert(base_labels.end(), base);
          const std::string color = chart_color(static_cast<size_t>(at - base_labels.begin()));
          const bool baseline = !s.source.empty();
          const std::string name = !baseline ? (base.empty() ? s.bench : base)
                                             : (base.empty() ? s.source : base + " (" + s.source + ")");
          ChartSeries l{name, color, baseline, {}, {}, {}}, f{name, color, baseline, {}, {}, {}},
              v{name, color, false, {}, {}, {}};
          for (const json* p : s.points) {
            const double x = number_or_nan((*p)["x"]);
            l.x.push_back(x), l.y.push_back((*p)["us"].get<double>()), l.err.push_back(number_or_nan((*p)["us_stddev"]));
            if ((*p)["pct_floor"].is_number()) {
              f.x.push_back(x), f.y.push_back((*p)["pct_floor"].get<double>());
              max_pct = std::max(max_pct, f.y.back());
            }
            if (!baseline && (*p)["counters"].contains("speedup_vs_bf16"))
              v.x.push_back(x), v.y.push_back(number_or_nan((*p)["counters"]["speedup_vs_bf16"]));
          }
          lat.push_back(std::move(l));
          if (!f.x.empty()) floor.push_back(std::move(f));
          if (!v.x.empty()) speed.push_back(std::move(v));
        }
        std::string charts = svg_chart({title + ": time", xl, "µs (log scale)", true, NAN, "latency"}, lat);
        // Lines that all lie along the axis say nothing: the number is told instead.
        if (max_pct >= kLowestChartedPct)
          charts += svg_chart({title + ": % of floor", xl, "% of floor (100 = at the floor)", false, 100, "roofline"}, floor);
        else if (max_pct >= 0)
          charts += fmt::format("<p class=\"note chart-note\">{}: every point is below {:.0f} % of its floor (at most "
                                "{:.2g} %): far from the bandwidth floor, likely bound by launch and latency. No % chart; "
                                "the values are in Details.</p>\n",
                                html_escape(title), kLowestChartedPct, max_pct);
        if (!speed.empty())
          charts += svg_chart({title + ": speedup over the bf16 layer", xl, "bf16 time ÷ time", false, 1, "speedup"}, speed);
        if (!charts.empty())
          o += fmt::format("<div class=\"charts\" data-family=\"{}\">\n{}</div>\n", html_escape(fam), charts);
      }
    }
  }
  return o;
}

std::string baseline_section(const json& rep) {
  if (rep["baselines"].empty()) return "";
  std::string o = "<section id=\"baselines\">\n<h2>Baselines</h2>\n";
  for (const auto& b : rep["baselines"]) {
    const std::string name = b["name"].get<std::string>();
    o += fmt::format("<h3>ours ÷ {} <span class=\"note mono\">({})</span></h3>\n", html_escape(name),
                     html_escape(b["path"].get<std::string>()));
    const auto& rows = b["ratios"]["rows"];
    if (rows.empty()) {
      o += "<p class=\"note\">No benchmark of this file has the name of one of ours.</p>\n";
    } else {
      std::set<int64_t> ms;
      for (const auto& r : rows)
        for (const auto& p : r["points"]) ms.insert(p["M"].get<int64_t>());
      o += "<table class=\"ratios\">\n<tr><th>benchmark</th><th>model</th>";
      for (auto m : ms) o += fmt::format("<th class=\"num\">M={}</th>", m);
      o += "<th class=\"num\">geomean</th></tr>\n";
      for (const auto& r : rows) {
        o += fmt::format("<tr>{}{}", td(r["params"].get<std::string>().empty()
                                            ? r["bench"].get<std::string>()
                                            : r["bench"].get<std::string>() + " " + r["params"].get<std::string>(),
                                        "mono"),
                         td(r["model"].get<std::string>()));
        for (auto m : ms) {
          const json* hit = nullptr;
          for (const auto& p : r["points"])
            if (p["M"].get<int64_t>() == m) hit = &p;
          o += hit ? ratio_cell((*hit)["ratio"].get<double>(),
                                fmt::format("ours {} µs, {} {} µs", format_number((*hit)["ours_us"].get<double>()), name,
                                            format_number((*hit)["baseline_us"].get<double>())))
                   : "<td class=\"num\">-</td>";
        }
        o += ratio_cell(r["geomean"].get<double>(), "geometric mean of the row") + "</tr>\n";
      }
      o += "</table>\n<table class=\"ratios-by-model\">\n<tr><th>model</th><th class=\"num\">geomean of ours ÷ " +
           html_escape(name) + "</th></tr>\n";
      for (auto it = b["ratios"]["geomean_by_model"].begin(); it != b["ratios"]["geomean_by_model"].end(); ++it)
        o += fmt::format("<tr>{}{}</tr>\n", td(it.key().empty() ? "(no model)" : it.key()),
                         ratio_cell(it.value().get<double>(), "geometric mean over the model's points"));
      o += fmt::format("<tr><th>all</th>{}</tr>\n</table>\n",
                       ratio_cell(number_or_nan(b["ratios"]["geomean"]), "geometric mean over every matched point"));
    }
    if (!b["unmatched"].empty()) {
      std::string names;
      for (size_t i = 0; i < b["unmatched"].size() && i < 5; ++i)
        names += (i ? ", " : "") + b["unmatched"][i].get<std::string>();
      o += fmt::format("<p class=\"note\">{} benchmark(s) of this file have no point of ours with the same name and M "
                       "(e.g. <span class=\"mono\">{}</span>).</p>\n",
                       b["unmatched"].size(), html_escape(names));
    }
  }
  o += "<p class=\"note\">Ours ÷ baseline, per point: below 1, ours is faster. A baseline's benchmark lines up with ours "
       "when its name is ours (Google Benchmark's suffixes such as /iterations:N/manual_time aside) at the same M.</p>\n";
  return o + "</section>\n";
}

std::string bench_points_table(const json& rep) {
  const auto& pts = rep["bench"]["points"];
  if (pts.empty()) return "";
  auto counter = [](const json& p, const char* k) {
    return p["counters"].contains(k) ? number_or_nan(p["counters"][k]) : NAN;
  };
  std::string o = "<h3>Benchmark data</h3>\n<table id=\"bench-points\">\n<tr><th>benchmark</th><th>family</th><th>model</th>"
                  "<th>parameters</th><th>dtype</th><th>M</th><th>µs</th><th>± sd</th><th>n</th><th>GB/s</th><th>TFLOP/s</th>"
                  "<th>floor µs</th><th>bound</th><th>% of floor</th><th>label</th></tr>\n";
  for (const auto& p : pts)
    o += fmt::format("<tr>{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}</tr>\n", td(p["name"].get<std::string>(), "mono"),
                     td(p["family"].get<std::string>()), td(p["model"].get<std::string>()),
                     td(p["params_text"].get<std::string>(), "mono"), td(p["dtype"].get<std::string>()),
                     td(json_scalar_text(p["M"]), "num"), td(format_number(p["us"].get<double>()), "num"),
                     td(format_number(p["us_stddev"].get<double>()), "num"), td(json_scalar_text(p["samples"]), "num"),
                     td(format_number(counter(p, "GBps")), "num"), td(format_number(counter(p, "TFLOPs")), "num"),
                     td(format_number(number_or_nan(p["floor"]["us"])), "num"), td(p["floor"]["bound"].get<std::string>()),
                     td(format_number(number_or_nan(p["pct_floor"])), "num"), td(p["label"].get<std::string>(), "mono"));
  return o + "</table>\n";
}

}  // namespace moe::report_html
