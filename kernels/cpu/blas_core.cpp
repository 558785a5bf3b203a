#include "kernels/cpu/blas_core.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include <unistd.h>

#include <cblas.h>

namespace kernels::cpu {

std::string blas_core() {
  const char* name = openblas_get_corename();
  std::string core = name ? name : "";
  std::transform(core.begin(), core.end(), core.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return core;
}

bool is_generic_blas_core(const std::string& core) {
  // OpenBLAS's pre-AVX2 x86-64 cores: what it falls back to on a CPU model it does not know.
  static const char* generic[] = {"prescott", "core2", "penryn", "dunnington", "nehalem",
                                  "atom", "sandybridge", "unknown", ""};
  return std::any_of(std::begin(generic), std::end(generic),
                     [&](const char* g) { return core == g; });
}

std::string better_blas_core() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr)
    return "";
  if (!is_generic_blas_core(blas_core()))
    return "";
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the registers (XGETBV).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
      && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
      && __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return "Haswell";
  return "";
}


void run_again_with_better_blas_core(char** argv) {
  auto core = better_blas_core();
  if (core.empty())
    return;
  ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  // The binary's own path, not /proc/self/exe: the process keeps its name (ps, top, pgrep).
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n > 0) {
    path[n] = '\0';
    ::execv(path, argv);
  }
  std::fprintf(stderr, "[actorserve] OpenBLAS uses its generic %s kernels on this CPU; could "
                       "not restart with OPENBLAS_CORETYPE=%s: set it yourself\n",
               blas_core().c_str(), core.c_str());
}

} // namespace kernels::cpu
