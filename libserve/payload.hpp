// JSON <-> tensors for model deployments.
//
// Requests carry nested JSON lists (row-major); the nesting gives the shape and the model's
// declaration gives the dtype. Replies are nested lists again, float32 values printed in their
// shortest round-trip form. Errors name the input and what was expected.
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "libserve/tensor.hpp"

namespace serve {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// A tensor of `type` from a nested JSON array or a scalar; the shape follows the nesting.
/// Throws serve_exception(invalid_argument) naming `what` for ragged nesting, values of the
/// wrong kind (a string where a number is expected) or integers out of the dtype's range.
tensor tensor_from_json(const rapidjson::Value& value, dtype type, const std::string& what);

/// Writes rows [first_row, first_row + rows) of `t` (dim 0) as a nested array. With
/// `drop_row_dim` and rows == 1 the single row is written without its enclosing list.
void write_tensor_rows(json_writer& w, const tensor& t, int64_t first_row, int64_t rows,
                       bool drop_row_dim);

/// Writes one element of `t` (flat index) as a JSON scalar.
void write_tensor_element(json_writer& w, const tensor& t, int64_t index);

/// Copies rows [first_row, first_row + rows) of `t` (dim 0) into a new tensor.
tensor slice_rows(const tensor& t, int64_t first_row, int64_t rows);

/// Concatenates tensors of the same dtype and trailing dims along dim 0.
tensor concat_rows(const std::vector<const tensor*>& parts);

} // namespace serve
