#include "libserve/graph_deployment.hpp"
#include "libserve/json.hpp"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace serve {
namespace {

using json_value = rapidjson::Value;
using json_allocator = rapidjson::Document::AllocatorType;

/// Compact JSON text of `value`, cut after `limit` characters (0 = never) for error messages.
std::string compact_json(const json_value& value, size_t limit = 0) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  value.Accept(writer);
  std::string text(buf.GetString(), buf.GetSize());
  if (limit > 0 && text.size() > limit)
    text = text.substr(0, limit) + "...";
  return text;
}

constexpr size_t error_excerpt_chars = 200;

std::string quoted(const std::string& name) {
  return "\"" + name + "\"";
}

/// A sub-call: the original request's id, method, path and query with a new body.
request with_body(const request& original, std::string body) {
  request next{original.id, original.method, original.path, original.query, std::move(body), {},
               original.received_ns};
  return next;
}

/// Parses a sub-call's response; a body that is not JSON fails with errc::internal.
rapidjson::Document parse_result(const std::string& role, const response& r) {
  rapidjson::Document doc;
  if (parse_json(doc, r.body))
    throw serve_exception(errc::internal, role + " returned a body that is not JSON: " +
                                              r.body.substr(0, error_excerpt_chars));
  return doc;
}

// -- sequence -------------------------------------------------------------------------------

class sequence_graph : public deployment {
public:
  explicit sequence_graph(std::vector<serve::handle> steps) : steps_(std::move(steps)) {}

  future<response> handle(request req) override {
    request header = with_body(req, {});
    auto result = steps_.front().remote(std::move(req));
    for (size_t i = 1; i < steps_.size(); ++i)
      result = result.then([next = steps_[i], header](response r) {
        return next.remote(with_body(header, std::move(r.body)));
      });
    return result;
  }

private:
  std::vector<serve::handle> steps_;
};

// -- ensemble -------------------------------------------------------------------------------

enum class combiner { list, mean, majority, concat };

struct ensemble_plan {
  std::vector<serve::handle> members;
  combiner how = combiner::list;
};

/// True when `value` is a number or a (nested) array of numbers shaped exactly like `like`.
bool same_numeric_shape(const json_value& value, const json_value& like) {
  if (like.IsNumber())
    return value.IsNumber();
  if (!like.IsArray() || !value.IsArray() || value.Size() != like.Size())
    return false;
  for (rapidjson::SizeType i = 0; i < like.Size(); ++i)
    if (!same_numeric_shape(value[i], like[i]))
      return false;
  return true;
}

/// Elementwise mean of values already checked to share one numeric shape.
json_value mean_of(const std::vector<const json_value*>& values, json_allocator& alloc) {
  const json_value& first = *values.front();
  if (first.IsNumber()) {
    double sum = 0;
    for (auto* v : values)
      sum += v->GetDouble();
    return json_value(sum / static_cast<double>(values.size()));
  }
  json_value out(rapidjson::kArrayType);
  std::vector<const json_value*> column(values.size());
  for (rapidjson::SizeType i = 0; i < first.Size(); ++i) {
    for (size_t k = 0; k < values.size(); ++k)
      column[k] = &(*values[k])[i];
    out.PushBack(mean_of(column, alloc), alloc);
  }
  return out;
}

json_value combine_mean(const std::vector<std::string>& names,
                        const std::vector<rapidjson::Document>& results, json_allocator& alloc) {
  const json_value& first = results.front();
  std::vector<const json_value*> values;
  for (size_t i = 0; i < results.size(); ++i) {
    if (!same_numeric_shape(results[i], first)) {
      auto returned = [&](size_t k) {
        return "member " + quoted(names[k]) + " returned " +
               compact_json(results[k], error_excerpt_chars);
      };
      throw serve_exception(errc::internal,
                            "combiner \"mean\" needs numbers or equally shaped arrays of "
                            "numbers; " +
                                returned(i) + (i > 0 ? " while " + returned(0) : ""));
    }
    values.push_back(&results[i]);
  }
  return mean_of(values, alloc);
}

/// The most common result by compact JSON text; ties go to the first seen in member order.
json_value combine_majority(const std::vector<rapidjson::Document>& results,
                            json_allocator& alloc) {
  std::vector<std::string> texts;
  std::map<std::string, size_t> counts;
  for (auto& r : results)
    ++counts[texts.emplace_back(compact_json(r))];
  size_t best = 0;
  for (size_t i = 1; i < results.size(); ++i)
    if (counts[texts[i]] > counts[texts[best]])
      best = i;
  return json_value(results[best], alloc);
}

response combine(const ensemble_plan& plan, const std::vector<response>& responses) {
  std::vector<std::string> names;
  std::vector<rapidjson::Document> results;
  for (size_t i = 0; i < responses.size(); ++i) {
    names.push_back(plan.members[i].deployment_name());
    results.push_back(parse_result("ensemble member " + quoted(names.back()), responses[i]));
  }
  json_allocator alloc;
  json_value out(rapidjson::kArrayType);
  switch (plan.how) {
  case combiner::mean:
    out = combine_mean(names, results, alloc);
    break;
  case combiner::majority:
    out = combine_majority(results, alloc);
    break;
  case combiner::list:
  case combiner::concat:
    for (auto& r : results) {
      if (plan.how == combiner::concat && r.IsArray())
        for (auto& element : r.GetArray())
          out.PushBack(json_value(element, alloc), alloc);
      else
        out.PushBack(json_value(r, alloc), alloc);
    }
    break;
  }
  return response::json(out);
}

class ensemble_graph : public deployment {
public:
  explicit ensemble_graph(ensemble_plan plan)
      : plan_(std::make_shared<const ensemble_plan>(std::move(plan))) {}

  future<response> handle(request req) override {
    std::vector<future<response>> calls;
    calls.reserve(plan_->members.size());
    for (auto& member : plan_->members)
      calls.push_back(member.remote(with_body(req, req.body)));
    return when_all(std::move(calls)).then([plan = plan_](std::vector<response> responses) {
      return combine(*plan, responses);
    });
  }

private:
  std::shared_ptr<const ensemble_plan> plan_;
};

// -- conditional ----------------------------------------------------------------------------

struct conditional_plan {
  serve::handle call;
  std::string field;
  double threshold = 0;
  std::optional<serve::handle> above;
  std::optional<serve::handle> below;
};

/// The number that decides the branch: the result itself, or its member `field`.
double decision_value(const conditional_plan& plan, const response& r) {
  std::string role = "conditional call " + quoted(plan.call.deployment_name());
  auto result = parse_result(role, r);
  if (result.IsNumber())
    return result.GetDouble();
  if (result.IsObject()) {
    auto i = result.FindMember(plan.field.c_str());
    if (i != result.MemberEnd() && i->value.IsNumber())
      return i->value.GetDouble();
  }
  throw serve_exception(errc::internal, role + " returned " +
                                            compact_json(result, error_excerpt_chars) +
                                            "; expected a number or an object with numeric field " +
                                            quoted(plan.field));
}

class conditional_graph : public deployment {
public:
  explicit conditional_graph(conditional_plan plan)
      : plan_(std::make_shared<const conditional_plan>(std::move(plan))) {}

  future<response> handle(request req) override {
    request header = with_body(req, {});
    return plan_->call.remote(std::move(req))
        .then([plan = plan_, header](response r) -> future<response> {
          double value = decision_value(*plan, r);
          const auto& branch = value > plan->threshold ? plan->above : plan->below;
          if (!branch)
            return r;
          return branch->remote(with_body(header, std::move(r.body)));
        });
  }

private:
  std::shared_ptr<const conditional_plan> plan_;
};

// -- reading the config ---------------------------------------------------------------------

/// Reads the (already validated) graph object; re-checks what it relies on.
class graph_reader {
public:
  explicit graph_reader(const deployment_context& ctx) : ctx_(ctx) {}

  [[noreturn]] void fail(const std::string& path, const std::string& why) const {
    throw serve_exception(errc::invalid_argument, "deployment " + quoted(ctx_.deployment) +
                                                      " graph" + (path.empty() ? "" : ".") + path +
                                                      ": " + why);
  }

  serve::handle name(const json_value& v, const std::string& path) const {
    if (!v.IsString() || v.GetStringLength() == 0)
      fail(path, "must be a deployment name; was " + compact_json(v, error_excerpt_chars));
    return ctx_.get_handle(v.GetString());
  }

  std::vector<serve::handle> names(const json_value& graph, const char* key) const {
    const json_value& list = graph[key];
    if (!list.IsArray() || list.Empty())
      fail(key, "must be a non-empty array of deployment names");
    std::vector<serve::handle> out;
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i)
      out.push_back(name(list[i], std::string(key) + "[" + std::to_string(i) + "]"));
    return out;
  }

  combiner read_combiner(const json_value& graph) const {
    auto i = graph.FindMember("combiner");
    if (i == graph.MemberEnd() || i->value.IsNull())
      return combiner::list;
    std::string how = i->value.IsString() ? i->value.GetString() : "";
    for (auto [text, value] : {std::pair{"list", combiner::list},
                               {"mean", combiner::mean},
                               {"majority", combiner::majority},
                               {"concat", combiner::concat}})
      if (how == text)
        return value;
    fail("combiner", "must be one of \"list\", \"mean\", \"majority\", \"concat\"; was " +
                         compact_json(i->value, error_excerpt_chars));
  }

  conditional_plan conditional(const json_value& cond) const {
    if (!cond.IsObject())
      fail("conditional", "must be an object");
    if (!cond.HasMember("call"))
      fail("conditional.call", "is required");
    conditional_plan plan;
    plan.call = name(cond["call"], "conditional.call");
    if (!cond.HasMember("field") || !cond["field"].IsString())
      fail("conditional.field", "must be a string");
    plan.field = cond["field"].GetString();
    if (!cond.HasMember("threshold") || !cond["threshold"].IsNumber())
      fail("conditional.threshold", "must be a number");
    plan.threshold = cond["threshold"].GetDouble();
    plan.above = optional_name(cond, "above");
    plan.below = optional_name(cond, "below");
    return plan;
  }

  /// A branch of a conditional: missing or null means "none".
  std::optional<serve::handle> optional_name(const json_value& cond, const char* key) const {
    auto i = cond.FindMember(key);
    if (i == cond.MemberEnd() || i->value.IsNull())
      return std::nullopt;
    return name(i->value, std::string("conditional.") + key);
  }

private:
  const deployment_context& ctx_;
};

} // namespace

std::unique_ptr<deployment> make_graph_deployment(const deployment_context& ctx) {
  graph_reader read(ctx);
  if (!ctx.graph_config || !ctx.graph_config->IsObject())
    read.fail("", "the graph config must be an object");
  const json_value& graph = *ctx.graph_config;
  if (graph.HasMember("sequence"))
    return std::make_unique<sequence_graph>(read.names(graph, "sequence"));
  if (graph.HasMember("ensemble"))
    return std::make_unique<ensemble_graph>(
        ensemble_plan{read.names(graph, "ensemble"), read.read_combiner(graph)});
  if (graph.HasMember("conditional"))
    return std::make_unique<conditional_graph>(read.conditional(graph["conditional"]));
  read.fail("", "must hold one of \"sequence\", \"ensemble\" or \"conditional\"");
}

} // namespace serve
