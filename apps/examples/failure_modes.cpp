// How failures surface: user exceptions, wrong-length batch results, slow calls, dead replicas.
//
// Shows: an exception in user code fails only its request (500, the server stays up); a batch
// handler that throws fails every caller of that batch and the next batch works; a batch
// handler returning the wrong number of results fails its batch with a 500 naming the
// mismatch; replica_failure takes a replica down, the requests it had not started are routed to
// another replica and the controller starts a replacement.
//
// Run: build/apps/actorserve run apps/examples/configs/failures.json
//   curl -s -X POST localhost:8000/throw -d '{"fail": true}'      # 500 with the message
//   curl -s -X POST localhost:8000/sleep -d '{"sleep_s": 0.5}'
#include <chrono>
#include <thread>

#include <rapidjson/document.h>

#include "libserve/deployment.hpp"

namespace examples {

namespace {

bool flag(const rapidjson::Document& body, const char* name) {
  return body.IsObject() && body.HasMember(name) && body[name].IsBool() && body[name].GetBool();
}

double number_or(const rapidjson::Document& body, const char* name, double fallback) {
  if (body.IsObject() && body.HasMember(name) && body[name].IsNumber())
    return body[name].GetDouble();
  return fallback;
}

serve::response ok_reply(const std::string& replica_id) {
  return serve::response{"{\"ok\":true,\"replica_id\":\"" + replica_id + "\"}",
                         "application/json"};
}

} // namespace

/// {"fail": true} -> throws std::runtime_error (500); anything else -> {"ok": true}.
/// Batched too: one failing request fails its whole batch.
class thrower : public serve::deployment {
public:
  explicit thrower(const serve::deployment_context& ctx) : replica_id_(ctx.replica_id) {}

  serve::future<serve::response> handle(serve::request req) override {
    if (flag(req.json(), "fail"))
      throw std::runtime_error("user code failed on purpose");
    return ok_reply(replica_id_);
  }

private:
  std::string replica_id_;
};

/// Batch handler that returns one result too few when any request says {"short": true}.
class wrong_batch : public serve::deployment {
public:
  explicit wrong_batch(const serve::deployment_context& ctx) : replica_id_(ctx.replica_id) {}

  serve::future<std::vector<serve::response>> handle_batch(
    std::vector<serve::request> requests) override {
    bool short_result = false;
    for (auto& r : requests)
      short_result |= flag(r.json(), "short");
    std::vector<serve::response> out(requests.size() - (short_result ? 1 : 0),
                                     ok_reply(replica_id_));
    return out;
  }

private:
  std::string replica_id_;
};

/// {"sleep_s": x} -> sleeps x seconds on the replica's thread, then {"slept_s": x}.
class sleeper : public serve::deployment {
public:
  explicit sleeper(const serve::deployment_context&) {}

  serve::future<serve::response> handle(serve::request req) override {
    double s = number_or(req.json(), "sleep_s", 0.0);
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
    return serve::response{"{\"slept_s\":" + std::to_string(s) + "}", "application/json"};
  }
};

/// {"crash": true, "sleep_s": x} -> sleeps x, then throws replica_failure (the replica goes
/// down and is replaced); otherwise sleeps x and answers {"ok": true, "replica_id": ...}.
class crasher : public serve::deployment {
public:
  explicit crasher(const serve::deployment_context& ctx) : replica_id_(ctx.replica_id) {}

  serve::future<serve::response> handle(serve::request req) override {
    auto body = req.json();
    std::this_thread::sleep_for(std::chrono::duration<double>(number_or(body, "sleep_s", 0.0)));
    if (flag(body, "crash"))
      throw serve::replica_failure("asked to crash");
    return ok_reply(replica_id_);
  }

private:
  std::string replica_id_;
};

/// Fails in its constructor: the deployment becomes DEPLOY_FAILED with this message.
class broken_constructor : public serve::deployment {
public:
  explicit broken_constructor(const serve::deployment_context&) {
    throw std::runtime_error("model file is missing (on purpose)");
  }
};

SERVE_REGISTER_DEPLOYMENT("Thrower", thrower);
SERVE_REGISTER_DEPLOYMENT("WrongBatch", wrong_batch);
SERVE_REGISTER_DEPLOYMENT("Sleeper", sleeper);
SERVE_REGISTER_DEPLOYMENT("Crasher", crasher);
SERVE_REGISTER_DEPLOYMENT("BrokenConstructor", broken_constructor);

} // namespace examples
