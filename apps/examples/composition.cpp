// Model composition and ensembles from Ray Serve's "Serving ML Models" guide, in C++.
//
// Shows: handles to other deployments, chaining with then(), branching on a result, and
// fanning out calls and gathering them with when_all() - none of it blocking a thread.
//
//   ComposedModel (/composed): model_one returns a random score; above 0.5 the composed model
//     also calls model_two. Replies {"model_used: 1 & 2;  score": s} or {"model_used: 1 ; score": s}.
//   EnsembleModel (/ensemble): calls model_one and model_two in parallel, replies [1, 2].
//     Each sub-model is a DelayedConstant that answers its user_config "value" after "delay_s".
//
// Run: scripts/run-examples   (or: build/apps/actorserve run apps/examples/configs/composed.json)
//   curl -s -X POST localhost:8000/composed -d '"hello"'
//   curl -s localhost:8000/ensemble
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include <rapidjson/document.h>

#include "libserve/deployment.hpp"

namespace examples {

/// model_one of the composition example: a random score in [0, 1).
class random_score : public serve::deployment {
public:
  explicit random_score(const serve::deployment_context&) : rng_(std::random_device{}()) {}

  serve::future<serve::response> handle(serve::request) override {
    double score;
    {
      std::lock_guard<std::mutex> guard(mtx_);
      score = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    }
    rapidjson::Value v(score);
    return serve::response::json(v);
  }

private:
  std::mutex mtx_;
  std::mt19937_64 rng_; // protected by mtx_
};

/// model_two of the composition example: returns its input, which must be JSON (400 if not,
/// so the reply is always the JSON it declares).
class echo_model : public serve::deployment {
public:
  explicit echo_model(const serve::deployment_context&) {}

  serve::future<serve::response> handle(serve::request req) override {
    req.json(); // throws invalid_argument for a body that is not JSON
    return serve::response{std::move(req.body), "application/json"};
  }
};

/// Calls model_one; when its score is above 0.5 also calls model_two.
class composed_model : public serve::deployment {
public:
  explicit composed_model(const serve::deployment_context& ctx)
    : model_one_(ctx.get_handle("model_one")), model_two_(ctx.get_handle("model_two")) {}

  serve::future<serve::response> handle(serve::request req) override {
    req.json(); // like the guide's `data = await request.json()`: 400 unless the body is JSON
    auto data = req.body;
    return model_one_.remote(req.body).then(
      [this, data](serve::response r) -> serve::future<serve::response> {
        double score = r.parse_json().GetDouble();
        if (score <= 0.5)
          return reply("model_used: 1 ; score", score);
        return model_two_.remote(data).then(
          [score](serve::response) { return reply("model_used: 1 & 2;  score", score); });
      });
  }

private:
  static serve::response reply(const char* key, double score) {
    rapidjson::Document doc(rapidjson::kObjectType);
    doc.AddMember(rapidjson::StringRef(key), score, doc.GetAllocator());
    return serve::response::json(doc);
  }

  serve::handle model_one_;
  serve::handle model_two_;
};

/// Answers user_config "value" (default 1) after "delay_s" seconds (default 1.0), standing in
/// for a model that computes for a while on its replica's own thread.
class delayed_constant : public serve::deployment {
public:
  explicit delayed_constant(const serve::deployment_context&) {}

  void reconfigure(const rapidjson::Value& user_config) override {
    if (!user_config.IsObject())
      return;
    if (user_config.HasMember("value") && user_config["value"].IsNumber())
      value_ = user_config["value"].GetDouble();
    if (user_config.HasMember("delay_s") && user_config["delay_s"].IsNumber())
      delay_s_ = user_config["delay_s"].GetDouble();
  }

  serve::future<serve::response> handle(serve::request) override {
    std::this_thread::sleep_for(std::chrono::duration<double>(delay_s_.load()));
    rapidjson::Value v;
    double value = value_.load();
    if (value == static_cast<int64_t>(value))
      v.SetInt64(static_cast<int64_t>(value));
    else
      v.SetDouble(value);
    return serve::response::json(v);
  }

private:
  std::atomic<double> value_{1.0};
  std::atomic<double> delay_s_{1.0};
};

/// Fans out to model_one and model_two in parallel and gathers: [1, 2].
class ensemble_model : public serve::deployment {
public:
  explicit ensemble_model(const serve::deployment_context& ctx)
    : models_{ctx.get_handle("model_one"), ctx.get_handle("model_two")} {}

  serve::future<serve::response> handle(serve::request req) override {
    std::vector<serve::future<serve::response>> calls;
    for (auto& m : models_)
      calls.push_back(m.remote(req.body));
    return serve::when_all(std::move(calls)).then([](std::vector<serve::response> results) {
      rapidjson::Document out(rapidjson::kArrayType);
      for (auto& r : results) {
        auto v = r.parse_json();
        out.PushBack(rapidjson::Value(v, out.GetAllocator()), out.GetAllocator());
      }
      return serve::response::json(out);
    });
  }

private:
  std::vector<serve::handle> models_;
};

SERVE_REGISTER_DEPLOYMENT("RandomScore", random_score);
SERVE_REGISTER_DEPLOYMENT("Echo", echo_model);
SERVE_REGISTER_DEPLOYMENT("ComposedModel", composed_model);
SERVE_REGISTER_DEPLOYMENT("DelayedConstant", delayed_constant);
SERVE_REGISTER_DEPLOYMENT("EnsembleModel", ensemble_model);

} // namespace examples
