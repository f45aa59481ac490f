#include "quant_args.hpp"

#include <fmt/format.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "moe/error.hpp"

namespace py = pybind11;

namespace moe::python {

quant::QuantSpec quant_spec(const std::string& qtype, const std::string& granularity, int64_t group,
                            const std::string& group_layout, int64_t block_rows, int64_t block_cols, bool static_scale) {
  quant::QuantSpec s;
  s.qtype = quant::parse_qtype(qtype);
  if (granularity == "per_tensor") s.granularity = quant::Granularity::PerTensor;
  else if (granularity == "per_row") s.granularity = quant::Granularity::PerRow;
  else if (granularity == "per_group") s.granularity = quant::Granularity::PerGroup;
  else if (granularity == "per_block") s.granularity = quant::Granularity::PerBlock;
  else throw_input_error(fmt::format("unknown granularity '{}' (expected per_tensor, per_row, per_group or per_block)", granularity));
  s.group = group;
  if (group_layout == "row") s.group_layout = quant::GroupScaleLayout::RowMajor;
  else if (group_layout == "col") s.group_layout = quant::GroupScaleLayout::ColMajor;
  else throw_input_error(fmt::format("unknown group_layout '{}' (expected row or col)", group_layout));
  s.block_rows = block_rows;
  s.block_cols = block_cols;
  s.static_scale = static_scale;
  return s;
}

quant::QuantProblem quant_problem(const std::vector<int64_t>& shape, DType in, const quant::QuantSpec& spec,
                                  const std::string& name) {
  quant::QuantProblem p;
  if (shape.size() == 2) p.shape = {1, shape[0], shape[1]};
  else if (shape.size() == 3) p.shape = {shape[0], shape[1], shape[2]};
  else throw py::value_error(fmt::format("{}: expected rank 2 (rows, cols) or 3 (batch, rows, cols), got shape {}", name, shape_text(shape)));
  p.in_dtype = in;
  p.spec = spec;
  p.name = name;
  p.validate();
  return p;
}

std::vector<int64_t> scale_dims(const quant::QuantProblem& p, size_t input_rank) {
  const auto s = p.scale_shape();
  const bool drop_batch = input_rank == 2 && s.size() > 1;
  return std::vector<int64_t>(s.begin() + (drop_batch ? 1 : 0), s.end());
}

void check_scale_count(int64_t count, const std::vector<int64_t>& got_shape, const quant::QuantProblem& qp,
                       const std::string& name) {
  if (count != qp.num_scales())
    throw py::value_error(fmt::format("{} scales: expected shape {} ({}), got {}", name, shape_text(qp.scale_shape()),
                                      qp.summary(), shape_text(got_shape)));
}

}  // namespace moe::python
