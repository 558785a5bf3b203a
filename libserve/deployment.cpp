#include "libserve/deployment.hpp"
#include "libserve/json.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace serve {

error_info current_exception_info() {
  try {
    throw;
  } catch (const serve_exception& e) {
    return {e.code(), e.what()};
  } catch (const std::exception& e) {
    return {errc::internal, e.what()};
  } catch (...) {
    return {errc::internal, "unknown exception"};
  }
}

rapidjson::Document request::json() const {
  rapidjson::Document doc;
  if (auto error = parse_json(doc, body))
    throw serve_exception(errc::invalid_argument, "request body is not valid JSON: " + *error);
  return doc;
}

response response::json(const rapidjson::Value& value) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  value.Accept(writer);
  response r;
  r.body.assign(buf.GetString(), buf.GetSize());
  return r;
}

response response::failure(errc code, std::string message) {
  response r;
  r.error = error_info{code, std::move(message)};
  return r;
}

response response::text(std::string body) {
  response r;
  r.body = std::move(body);
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

rapidjson::Document response::parse_json() const {
  rapidjson::Document doc;
  if (auto error = serve::parse_json(doc, body))
    throw serve_exception(errc::internal, "a deployment's response is not valid JSON (" + *error
                                            + "): " + printable_utf8(body.substr(0, 200)));
  return doc;
}

future<response> handle::remote(request req) const {
  if (!backend_)
    return future<response>::failed(
      {errc::internal, "handle to \"" + deployment_ + "\" is not bound to a runtime"});
  return backend_->call(deployment_, std::move(req));
}

future<response> handle::remote(std::string body) const {
  request req;
  req.body = std::move(body);
  return remote(std::move(req));
}

void deployment::reconfigure(const rapidjson::Value&) {
  // Deployments without a user_config hook ignore it.
}

future<response> deployment::handle(request) {
  return future<response>::failed(
    {errc::invalid_argument, "this deployment only accepts batched calls"});
}

future<std::vector<response>> deployment::handle_batch(std::vector<request> requests) {
  std::vector<future<response>> results;
  results.reserve(requests.size());
  for (auto& req : requests)
    results.emplace_back(handle(std::move(req)));
  return when_all(std::move(results));
}

namespace {

struct registry_state {
  std::mutex mtx;
  std::map<std::string, deployment_factory> factories;
};

registry_state& registry() {
  static registry_state state;
  return state;
}

} // namespace

void deployment_registry::add(const std::string& name, deployment_factory factory) {
  auto& reg = registry();
  std::lock_guard<std::mutex> guard(reg.mtx);
  reg.factories[name] = std::move(factory);
}

deployment_factory deployment_registry::find(const std::string& name) {
  auto& reg = registry();
  std::lock_guard<std::mutex> guard(reg.mtx);
  auto i = reg.factories.find(name);
  return i == reg.factories.end() ? deployment_factory{} : i->second;
}

std::vector<std::string> deployment_registry::names() {
  auto& reg = registry();
  std::lock_guard<std::mutex> guard(reg.mtx);
  std::vector<std::string> out;
  for (auto& [name, _] : reg.factories)
    out.push_back(name);
  return out;
}

} // namespace serve
