// kernels/cpu/blas_core.hpp: which OpenBLAS kernels run, and the better core for a CPU that
// OpenBLAS fell back to generic kernels on.
#include "kernels/cpu/blas_core.hpp"

#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

using namespace kernels::cpu;

TEST_CASE("blas_core names the kernels OpenBLAS loaded, in lower case") {
  auto core = blas_core();
  REQUIRE_FALSE(core.empty());
  for (char c : core)
    CHECK_FALSE((c >= 'A' && c <= 'Z'));
}

TEST_CASE("better_blas_core proposes nothing once OPENBLAS_CORETYPE is set") {
  const char* before = std::getenv("OPENBLAS_CORETYPE");
  std::string saved = before ? before : "";
  ::setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  CHECK(better_blas_core().empty());
  if (before)
    ::setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
  else
    ::unsetenv("OPENBLAS_CORETYPE");
}

TEST_CASE("better_blas_core proposes a core only when OpenBLAS runs a generic one on an AVX2 CPU") {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr)
    return; // chosen by whoever runs the tests
  auto core = blas_core();
  auto better = better_blas_core();
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  CHECK(better.empty() == !(is_generic_blas_core(core) && avx2));
  if (!better.empty())
    CHECK((better == "SkylakeX" || better == "Haswell"));
}

TEST_CASE("the generic cores are OpenBLAS's pre-AVX2 ones") {
  CHECK(is_generic_blas_core("prescott"));
  CHECK(is_generic_blas_core("sandybridge"));
  CHECK_FALSE(is_generic_blas_core("haswell"));
  CHECK_FALSE(is_generic_blas_core("skylakex"));
  CHECK_FALSE(is_generic_blas_core("cooperlake"));
}
