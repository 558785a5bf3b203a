// The smallest deployments: a no-op, a greeter configured through user_config, and a batch
// handler that reports the batch sizes it saw.
//
// Shows: a plain handler, reconfigure() receiving user_config (re-applied without a restart by
// `actorserve deploy CONFIG`), and handle_batch() receiving up to max_batch_size requests.
//
// Run: build/apps/actorserve run apps/examples/configs/basics.json
//   curl -s localhost:8000/noop
//   curl -s -X POST localhost:8000/greet -d '{"name": "Ada"}'
//   for i in $(seq 20); do curl -s -X POST localhost:8000/batch -d "$i" & done; wait
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>

#include <rapidjson/document.h>

#include "libserve/deployment.hpp"
#include "libserve/json.hpp"

namespace examples {

/// Answers "ok" at once; the baseline of scripts/bench-core.
class noop : public serve::deployment {
public:
  explicit noop(const serve::deployment_context&) {}
  serve::future<serve::response> handle(serve::request) override {
    return serve::response{"\"ok\"", "application/json"};
  }
};

/// {"name": "Ada"} -> {"message": "<greeting>, Ada!", "replica_id": ..., "instance": n,
/// "reconfigures": k}. The greeting comes from user_config; "instance" tells whether the
/// replica was restarted (it was not, when only user_config changed).
class greeter : public serve::deployment {
public:
  explicit greeter(const serve::deployment_context& ctx)
    : replica_id_(ctx.replica_id), instance_(++instances_) {}

  void reconfigure(const rapidjson::Value& user_config) override {
    std::lock_guard<std::mutex> guard(mtx_);
    if (user_config.IsObject() && user_config.HasMember("greeting")
        && user_config["greeting"].IsString())
      greeting_ = user_config["greeting"].GetString();
    ++reconfigures_;
  }

  serve::future<serve::response> handle(serve::request req) override {
    auto body = req.json();
    std::string name = "world";
    if (body.IsObject() && body.HasMember("name") && body["name"].IsString())
      name = body["name"].GetString();
    rapidjson::Document out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    std::lock_guard<std::mutex> guard(mtx_);
    out.AddMember("message", rapidjson::Value(greeting_ + ", " + name + "!", a), a);
    out.AddMember("replica_id", rapidjson::Value(replica_id_, a), a);
    out.AddMember("instance", instance_, a);
    out.AddMember("reconfigures", reconfigures_, a);
    return serve::response::json(out);
  }

private:
  static inline std::atomic<int> instances_{0};
  const std::string replica_id_;
  const int instance_;
  std::mutex mtx_;
  std::string greeting_ = "Hello"; // protected by mtx_
  int reconfigures_ = 0;           // protected by mtx_
};

/// Batch handler: each reply is {"input": <body>, "batch_size": n, "batches_seen": [...]} where
/// batches_seen lists the sizes of the last 100 batches this replica ran.
class batch_recorder : public serve::deployment {
public:
  explicit batch_recorder(const serve::deployment_context&) {}

  serve::future<std::vector<serve::response>> handle_batch(
    std::vector<serve::request> requests) override {
    std::deque<size_t> seen;
    {
      std::lock_guard<std::mutex> guard(mtx_);
      sizes_.push_back(requests.size());
      if (sizes_.size() > 100)
        sizes_.pop_front();
      seen = sizes_;
    }
    std::vector<serve::response> out;
    for (auto& req : requests) {
      rapidjson::Document doc(rapidjson::kObjectType);
      auto& a = doc.GetAllocator();
      rapidjson::Document input;
      if (serve::parse_json(input, req.body)) // not JSON: echo the body as a string
        input.SetString(serve::printable_utf8(req.body), a);
      doc.AddMember("input", rapidjson::Value(input, a), a);
      doc.AddMember("batch_size", static_cast<uint64_t>(requests.size()), a);
      rapidjson::Value sizes(rapidjson::kArrayType);
      for (auto s : seen)
        sizes.PushBack(static_cast<uint64_t>(s), a);
      doc.AddMember("batches_seen", sizes, a);
      out.push_back(serve::response::json(doc));
    }
    return out;
  }

private:
  std::mutex mtx_;
  std::deque<size_t> sizes_; // protected by mtx_
};

SERVE_REGISTER_DEPLOYMENT("Noop", noop);
SERVE_REGISTER_DEPLOYMENT("Greeter", greeter);
SERVE_REGISTER_DEPLOYMENT("BatchRecorder", batch_recorder);

} // namespace examples
