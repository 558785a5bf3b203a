// `actorserve bench --plot`: draws p50 and p99 latency against achieved requests/s from a
// bench CSV by running scripts/plot_bench.py with a Python that has matplotlib. The script is
// found through ACTORSERVE_ROOT, above the binary, or above this source file; the Python is
// ACTORSERVE_PYTHON, ACTORSERVE_VENV's, the project venv (~/.cache/actorserve/venv) or python3.
#pragma once

#include <string>

namespace serve::cli {

/// Draws `png_path` from `csv_path`, blocking until the script exits; false, after saying on
/// stderr what to do instead, when the script or a Python with matplotlib cannot be found or
/// the script fails. Forks: call it from the command's one thread.
bool plot(const std::string& csv_path, const std::string& png_path);

} // namespace serve::cli
