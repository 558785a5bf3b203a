// Shared by the fuzz targets (test/fuzz/*_fuzz.cpp). Each target defines
// LLVMFuzzerTestOneInput; built with ACTORSERVE_FUZZ it is a libFuzzer binary (scripts/fuzz),
// otherwise replay_main.cpp turns it into a program that runs the committed corpus and the
// regression inputs once each (ctest "fuzz: ..."), in the plain and the sanitizer builds.
//
// A target refuses bad input the way the server does: with serve_exception. Anything else that
// escapes (another exception, a crash, a sanitizer report) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "libserve/future.hpp"

namespace serve::fuzz {

/// Runs `fn`; a serve_exception (the expected refusal of bad input) is swallowed.
template <class F>
void refusing(F&& fn) {
  try {
    fn();
  } catch (const serve_exception&) {
  }
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

} // namespace serve::fuzz
