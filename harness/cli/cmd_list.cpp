#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"
#include "moe/model_config.hpp"
#include "moe/registry.hpp"

namespace moe::cli {

void register_list(CLI::App& app, std::vector<Command>& out) {
  auto* sub = app.add_subcommand("list", "Kernels, dtypes and input distributions");
  out.push_back({sub, [](const CommonOptions&) {
                   fmt::print("kernels:\n");
                   for (const auto& k : kernel_families())
                     fmt::print("  {:<16} {} [impls: {}] [dtypes: {}]\n", k.name, k.summary, fmt::join(k.impls, ", "),
                                fmt::join(k.dtypes, ", "));
                   if (kernel_families().empty()) fmt::print("  (none registered)\n");
                   fmt::print("dtypes: bf16, fp16, fp32\n");
                   fmt::print("value distributions: normal, fanin\n");
                   fmt::print("routing distributions: softmax, balanced, zipf, one\n");
                   const std::string mc = find_config_file("model_configs.json", MOE_SOURCE_DIR);
                   const ModelTable table = load_model_table(mc);
                   fmt::print("models ({}):\n", mc);
                   for (const auto& m : table.models)
                     fmt::print("  {:<17} model_dim {:>5}  inter_dim {:>5}  experts {:>3}  top_k {}  routing {}{}\n", m.name,
                                m.model_dim, m.inter_dim, m.experts, m.top_k, routing_type_name(m.routing.type),
                                m.shared.count ? fmt::format("  shared {} x {}", m.shared.count, m.shared.inter_dim) : "");
                   fmt::print("sweeps:\n");
                   for (const auto& s : table.sweeps)
                     fmt::print("  {:<20} models {}  M {}{}\n", s.name, fmt::join(s.models, ","), fmt::join(s.M, ","),
                                s.pairwise ? " (pairwise)" : "");
                   return 0;
                 }});
}

}  // namespace moe::cli
