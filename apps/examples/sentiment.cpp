// apps/examples/sentiment.cpp
// A batched scorer behind a classifier that calls it through a handle, one call per text,
// gathered with when_all; the classifier's threshold comes from user_config.
// Run: build/apps/actorserve run apps/examples/configs/sentiment.json, then
//      curl -s -X POST localhost:8000/sentiment -d '{"texts": ["short", "a longer one"]}'
#include <algorithm>
#include <atomic>

#include <rapidjson/document.h>

#include "libserve/deployment.hpp"

namespace examples {

/// A toy batched model: scores each text in [0, 1]. Receives up to max_batch_size requests.
class length_scorer : public serve::deployment {
public:
  explicit length_scorer(const serve::deployment_context&) {}

  serve::future<std::vector<serve::response>> handle_batch(
    std::vector<serve::request> requests) override {
    std::vector<serve::response> out;              // exactly one response per request
    for (auto& req : requests) {
      auto text = req.json();                      // a JSON string
      if (!text.IsString())
        throw serve::serve_exception(serve::errc::invalid_argument, "expected a string");
      double score = std::min(1.0, text.GetStringLength() / 20.0);
      out.push_back(serve::response::json(rapidjson::Value(score)));
    }
    return out;   // on a fault that ruins the replica: throw serve::replica_failure("...")
  }
};

/// {"texts": ["...", ...]} -> [{"text": ..., "positive": true|false}, ...]
class classifier : public serve::deployment {
public:
  explicit classifier(const serve::deployment_context& ctx)
    : scorer_(ctx.get_handle("Scorer")) {}

  // user_config: at start, and again on every `actorserve deploy` that changes it.
  void reconfigure(const rapidjson::Value& cfg) override {
    if (cfg.IsObject() && cfg.HasMember("threshold") && cfg["threshold"].IsNumber())
      threshold_ = cfg["threshold"].GetDouble();
  }

  serve::future<serve::response> handle(serve::request req) override {
    auto body = req.json();                        // not JSON -> 400
    if (!body.IsObject() || !body.HasMember("texts") || !body["texts"].IsArray())
      throw serve::serve_exception(serve::errc::invalid_argument,
                                   "expected {\"texts\": [string, ...]}");   // -> 400
    std::vector<std::string> texts;
    std::vector<serve::future<serve::response>> calls;
    for (auto& t : body["texts"].GetArray()) {
      if (!t.IsString())
        throw serve::serve_exception(serve::errc::invalid_argument, "texts must be strings");
      texts.emplace_back(t.GetString());
      calls.push_back(scorer_.remote(serve::response::json(t).body));  // never blocks
    }
    double threshold = threshold_;
    return serve::when_all(std::move(calls))
      .then([texts, threshold](std::vector<serve::response> scores) {
        rapidjson::Document out(rapidjson::kArrayType);
        auto& a = out.GetAllocator();
        for (size_t i = 0; i < scores.size(); ++i) {
          rapidjson::Value item(rapidjson::kObjectType);
          item.AddMember("text", rapidjson::Value(texts[i].c_str(), a), a);
          item.AddMember("positive", scores[i].parse_json().GetDouble() > threshold, a);
          out.PushBack(item, a);
        }
        return serve::response::json(out);
      });
  }

private:
  serve::handle scorer_;
  std::atomic<double> threshold_{0.5};
};

SERVE_REGISTER_DEPLOYMENT("LengthScorer", length_scorer);
SERVE_REGISTER_DEPLOYMENT("Classifier", classifier);

} // namespace examples
