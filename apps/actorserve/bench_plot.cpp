// Finding the plot script and a matplotlib Python, and running them. See bench_plot.hpp.
#include "apps/actorserve/bench_plot.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace serve::cli {

namespace {

bool is_file(const std::string& path) {
  return access(path.c_str(), R_OK) == 0;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

/// scripts/plot_bench.py from ACTORSERVE_ROOT, else above the binary, else above this source.
std::string find_plot_script() {
  const std::string rel = "/scripts/plot_bench.py";
  if (const char* root = std::getenv("ACTORSERVE_ROOT"); root && is_file(root + rel))
    return root + rel;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    std::string dir = parent_dir(std::string(exe, static_cast<size_t>(n)));
    for (int up = 0; up < 5 && dir != "/"; ++up, dir = parent_dir(dir))
      if (is_file(dir + rel))
        return dir + rel;
  }
  std::string source_root = parent_dir(parent_dir(parent_dir(__FILE__)));
  return is_file(source_root + rel) ? source_root + rel : "";
}

/// Runs argv (no shell); the exit status, or -1 when it could not start.
int run_process(const std::vector<std::string>& argv, bool silent) {
  std::fflush(stdout); // the child writes to the same stdout after us
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (silent) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
    return -1;
  return WEXITSTATUS(status);
}

/// The first Python that imports matplotlib: the project venv's, then python3 on PATH.
std::string find_matplotlib_python() {
  std::vector<std::string> candidates;
  if (const char* py = std::getenv("ACTORSERVE_PYTHON"))
    candidates.emplace_back(py);
  if (const char* venv = std::getenv("ACTORSERVE_VENV"))
    candidates.push_back(std::string(venv) + "/bin/python");
  if (const char* home = std::getenv("HOME"))
    candidates.push_back(std::string(home) + "/.cache/actorserve/venv/bin/python");
  candidates.emplace_back("python3");
  for (auto& py : candidates)
    if (run_process({py, "-c", "import matplotlib"}, true) == 0)
      return py;
  return "";
}

} // namespace

bool plot(const std::string& csv_path, const std::string& png_path) {
  auto script = find_plot_script();
  if (script.empty()) {
    std::fprintf(stderr,
                 "actorserve bench: --plot: cannot find scripts/plot_bench.py; set "
                 "ACTORSERVE_ROOT to the ActorServe source tree. The CSV is %s\n",
                 csv_path.c_str());
    return false;
  }
  auto python = find_matplotlib_python();
  if (python.empty()) {
    std::fprintf(stderr,
                 "actorserve bench: --plot: no Python with matplotlib. Make the project venv "
                 "(it installs scripts/python-requirements.txt, matplotlib included):\n"
                 "  bash %s/venv.sh\nthen plot with:\n"
                 "  ~/.cache/actorserve/venv/bin/python %s %s %s\n",
                 parent_dir(script).c_str(), script.c_str(), csv_path.c_str(), png_path.c_str());
    return false;
  }
  if (run_process({python, script, csv_path, png_path}, false) != 0) {
    std::fprintf(stderr, "actorserve bench: --plot: %s %s failed; the CSV is %s\n", python.c_str(),
                 script.c_str(), csv_path.c_str());
    return false;
  }
  return true;
}

} // namespace serve::cli
