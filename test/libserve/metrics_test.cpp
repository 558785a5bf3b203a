#include "libserve/metrics.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "libserve/future.hpp"

using namespace serve;
using namespace serve::metrics;

namespace {

constexpr int writers = 8;
constexpr int per_writer = 100000;

/// Runs `body(i)` on `n` threads and joins them.
template <class F> void on_threads(int n, F body) {
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back(body, i);
  for (auto& t : threads)
    t.join();
}

/// The error message of what `f` throws, or "" when it does not throw serve_exception.
template <class F> std::string refusal(F f) {
  try {
    f();
  } catch (const serve_exception& e) {
    CHECK(e.code() == errc::invalid_argument);
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("counters, gauges and histograms sum exactly over 8 threads of 100000 updates") {
  registry r;
  auto c = r.get_counter("c_total", "c");
  auto g = r.get_gauge("g", "g");
  auto h = r.get_histogram("h", "h", {1, 10});
  on_threads(writers, [&](int t) {
    for (int i = 0; i < per_writer; ++i) {
      c.inc();
      g.add(t % 2 ? 2 : -1); // four threads up by 2, four down by 1
      h.observe(i % 3 == 0 ? 0.5 : 5);
    }
  });
  CHECK(c.value() == writers * per_writer);
  CHECK(g.value() == (writers / 2) * per_writer);
  auto s = h.read();
  CHECK(s.count == uint64_t(writers) * per_writer);
  CHECK(s.counts == std::vector<uint64_t>{uint64_t(writers) * 33334, uint64_t(writers) * 66666, 0});
  CHECK(s.sum == writers * (33334 * 0.5 + 66666 * 5.0));
}

TEST_CASE("counts made by threads that have already exited are kept") {
  registry r;
  auto c = r.get_counter("c_total", "c");
  auto g = r.get_gauge("g", "g");
  for (int round = 0; round < 20; ++round)
    on_threads(4, [&](int) {
      c.inc(5);
      g.inc();
    });
  CHECK(c.value() == 20 * 4 * 5);
  CHECK(g.value() == 20 * 4);
  CHECK(r.render().find("c_total 400\n") != std::string::npos);
}

TEST_CASE("a scrape racing with writers and exiting threads is exact once they have joined") {
  registry r;
  auto c = r.get_counter("c_total", "c", {{"deployment", "d"}});
  auto h = r.get_histogram("h_ms", "h", latency_ms_buckets(), {{"deployment", "d"}});
  std::atomic<bool> done{false};
  bool monotonic = true;
  bool sane = true;
  int scrapes = 0;
  std::thread scraper([&] {
    double last = 0;
    while (!done.load()) {
      sane = sane && r.render().find("h_ms_count{deployment=\"d\"}") != std::string::npos;
      double now = c.value();               // an exiting thread's counts move to the retired totals
      monotonic = monotonic && now >= last; // atomically: never lost, never counted twice
      last = now;
      sane = sane && h.read().count <= uint64_t(writers) * per_writer;
      ++scrapes;
    }
  });
  on_threads(writers, [&](int) {
    for (int burst = 0; burst < 10; ++burst) // short-lived threads: many exits during scrapes
      on_threads(1, [&](int) {
        for (int i = 0; i < per_writer / 10; ++i) {
          c.inc();
          h.observe(i % 700);
        }
      });
  });
  done = true;
  scraper.join();
  CHECK(scrapes > 0);
  CHECK(monotonic);
  CHECK(sane);
  CHECK(c.value() == writers * per_writer);
  CHECK(h.read().count == uint64_t(writers) * per_writer);
}

TEST_CASE("a name declared as one kind is refused as another, naming the metric") {
  registry r;
  r.get_counter("requests_total", "Requests.");
  auto why = refusal([&] { r.get_gauge("requests_total", "Requests."); });
  CHECK(why.find("\"requests_total\"") != std::string::npos);
  CHECK(why.find("counter") != std::string::npos);
  CHECK(refusal([&] { r.get_histogram("requests_total", "Requests.", {1}); }) != "");
  CHECK(refusal([&] { r.get_counter("requests_total", "Other help."); }) != "");
  r.get_histogram("latency_ms", "Latency.", {1, 2});
  CHECK(refusal([&] { r.get_histogram("latency_ms", "Latency.", {1, 3}); }) != "");
  CHECK(refusal([&] { r.get_counter("requests_total", "Requests."); }) == "");
}

TEST_CASE("a name declared with some label names is refused with others") {
  registry r;
  r.get_counter("errors_total", "Errors.", {{"deployment", "a"}, {"route", "/"}});
  r.get_counter("errors_total", "Errors.", {{"deployment", "b"}, {"route", "/b"}});
  auto why = refusal([&] {
    r.get_counter("errors_total", "Errors.", {{"route", "/"}, {"deployment", "a"}});
  });
  CHECK(why.find("\"errors_total\"") != std::string::npos);
  CHECK(why.find("(deployment, route)") != std::string::npos);
  CHECK(refusal([&] { r.get_counter("errors_total", "Errors."); }) != "");
  CHECK(refusal([&] { r.get_counter("bad-name", "x"); }) != "");
  CHECK(refusal([&] { r.get_counter("x_total", "x", {{"__reserved", "v"}}); }) != "");
  CHECK(refusal([&] { r.get_histogram("h", "h", {1}, {{"le", "1"}}); }) != "");
  CHECK(refusal([&] { r.get_histogram("h2", "h", {2, 1}); }) != "");
}

TEST_CASE("removed series leave render and their old handles write nowhere") {
  registry r;
  auto a = r.get_counter("req_total", "Requests.", {{"deployment", "a"}});
  auto b = r.get_counter("req_total", "Requests.", {{"deployment", "b"}});
  auto qa = r.get_gauge("queued", "Queued.", {{"deployment", "a"}});
  auto ha = r.get_histogram("lat_ms", "Latency.", {1}, {{"deployment", "a"}});
  a.inc(3);
  b.inc(4);
  qa.inc();
  ha.observe(0.5);
  r.remove_series_with("deployment", "a");
  auto text = r.render();
  CHECK(text.find("deployment=\"a\"") == std::string::npos);
  CHECK(text.find("queued") == std::string::npos); // a family with no series prints nothing
  CHECK(text.find("lat_ms") == std::string::npos);
  CHECK(text.find("req_total{deployment=\"b\"} 4\n") != std::string::npos);

  a.inc(); // from this thread and from a fresh one
  std::thread([&] {
    qa.inc();
    ha.observe(0.5);
  }).join();
  CHECK(a.value() == 0);
  CHECK(ha.read().count == 0);
  CHECK(r.render().find("deployment=\"a\"") == std::string::npos);

  auto again = r.get_counter("req_total", "Requests.", {{"deployment", "a"}});
  CHECK(again.value() == 0); // a fresh series, not the old one resurrected
  again.inc();
  a.inc(100);
  CHECK(again.value() == 1);
}

TEST_CASE("render prints help, type, escaped labels, cumulative buckets and plain integers") {
  registry r;
  auto c = r.get_counter("serve_requests_total", "Requests \"served\".\nAll \\ of them.",
                         {{"deployment", "a\"b\\c\nd"}, {"route", "/x"}});
  c.inc();
  c.inc(2);
  r.get_gauge("queue_len", "Queued.").add(2.5);
  auto h = r.get_histogram("latency_ms", "Latency.", {0.5, 1, 2.5}, {{"deployment", "a"}});
  for (double v : {0.25, 0.5, 2.0, 7.0})
    h.observe(v);
  r.get_counter("gone_total", "Gone.", {{"deployment", "z"}}).inc();
  r.remove_series_with("deployment", "z");
  CHECK(r.render() == "# HELP latency_ms Latency.\n"
                      "# TYPE latency_ms histogram\n"
                      "latency_ms_bucket{deployment=\"a\",le=\"0.5\"} 2\n"
                      "latency_ms_bucket{deployment=\"a\",le=\"1\"} 2\n"
                      "latency_ms_bucket{deployment=\"a\",le=\"2.5\"} 3\n"
                      "latency_ms_bucket{deployment=\"a\",le=\"+Inf\"} 4\n"
                      "latency_ms_sum{deployment=\"a\"} 9.75\n"
                      "latency_ms_count{deployment=\"a\"} 4\n"
                      "# HELP queue_len Queued.\n"
                      "# TYPE queue_len gauge\n"
                      "queue_len 2.5\n"
                      "# HELP serve_requests_total Requests \"served\".\\nAll \\\\ of them.\n"
                      "# TYPE serve_requests_total counter\n"
                      "serve_requests_total{deployment=\"a\\\"b\\\\c\\nd\",route=\"/x\"} 3\n");
}

TEST_CASE("series of a family are rendered in label order whatever the creation order") {
  registry r;
  r.get_counter("x_total", "x", {{"d", "b"}}).inc(2);
  r.get_counter("x_total", "x", {{"d", "a"}}).inc(1);
  CHECK(r.render() == "# HELP x_total x\n# TYPE x_total counter\n"
                      "x_total{d=\"a\"} 1\nx_total{d=\"b\"} 2\n");
}

TEST_CASE("two registries used from one thread do not mix") {
  registry one;
  registry two;
  auto c1 = one.get_counter("c_total", "c");
  auto c2 = two.get_counter("c_total", "c");
  for (int i = 0; i < 1000; ++i) {
    c1.inc();
    c2.inc(2); // alternating defeats the last-registry cache every time
  }
  CHECK(c1.value() == 1000);
  CHECK(c2.value() == 2000);
}

TEST_CASE("registries can be destroyed while the threads that wrote to them live on") {
  constexpr int rounds = 200;
  constexpr int workers = 4;
  std::mutex mu;
  std::condition_variable cv;
  int round = 0;
  int finished = 0;
  counter current;
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      registry own; // a second registry alive across rounds
      auto mine = own.get_counter("own_total", "own");
      for (int r = 1; r <= rounds; ++r) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return round >= r; });
        counter c = current;
        lock.unlock();
        for (int i = 0; i < 100; ++i) {
          c.inc();
          mine.inc();
        }
        { // a registry made and destroyed on this thread too
          registry local;
          local.get_gauge("g", "g").inc();
        }
        lock.lock();
        ++finished;
        cv.notify_all();
      }
      CHECK(mine.value() == rounds * 100);
    });
  for (int r = 1; r <= rounds; ++r) {
    registry shared; // destroyed at the end of each round; the pool threads carry on
    std::unique_lock<std::mutex> lock(mu);
    current = shared.get_counter("c_total", "c");
    finished = 0;
    round = r;
    cv.notify_all();
    cv.wait(lock, [&] { return finished == workers; });
    CHECK(current.value() == workers * 100);
  }
  for (auto& t : pool)
    t.join(); // their exit must skip every destroyed registry
}

TEST_CASE("default-constructed handles do nothing") {
  counter c;
  gauge g;
  histogram h;
  c.inc();
  g.add(3);
  g.set(1);
  h.observe(1);
  CHECK(!c.valid());
  CHECK(c.value() == 0);
  CHECK(g.value() == 0);
  CHECK(h.read().count == 0);
}

TEST_CASE("a gauge set on one thread reads back what was set despite adds elsewhere before") {
  registry r;
  auto g = r.get_gauge("replicas", "Replicas.");
  std::thread([&] { g.add(7); }).join();
  g.set(3);
  CHECK(g.value() == 3);
  std::thread([&] { g.set(5); }).join();
  CHECK(g.value() == 5);
}

TEST_CASE("the latency buckets are Ray Serve's, in ms and in us") {
  const auto& ms = latency_ms_buckets();
  REQUIRE(ms.size() == 19);
  CHECK(ms.front() == 1);
  CHECK(ms[8] == 300);
  CHECK(ms.back() == 600000);
  const auto& us = latency_us_buckets();
  REQUIRE(us.size() == ms.size());
  for (size_t i = 0; i < ms.size(); ++i)
    CHECK(us[i] == ms[i] * 1000);
  CHECK(registry::global().get_histogram("test_latency_ms", "t", ms).valid());
}
