// Which OpenBLAS kernels run our GEMMs, and the fix for a CPU that OpenBLAS does not know.
//
// OpenBLAS picks its kernels ("core") once, when it is loaded, from the CPU model. Debian 12's
// OpenBLAS 0.3.21 does not know CPUs newer than itself (Sapphire Rapids, reported as "Intel(R)
// Xeon(R) Processor", was measured here) and falls back to its generic "Prescott" kernels, which
// ran the 784-512-512-10 MLP at batch 32 4-7x slower than the AVX-512 ("SkylakeX") kernels on the
// same machine. The environment variable OPENBLAS_CORETYPE picks the core instead, read at load
// time only; so a program sets it and executes itself again (see apps/actorserve/main.cpp).
#pragma once

#include <string>

namespace kernels::cpu {

/// The OpenBLAS core in use, lower case ("haswell", "skylakex", "prescott", ...).
std::string blas_core();

/// One of OpenBLAS's pre-AVX2 cores ("prescott", "nehalem", "sandybridge", ...).
bool is_generic_blas_core(const std::string& core);

/// The OPENBLAS_CORETYPE this CPU can run when OpenBLAS fell back to a generic core although
/// the CPU has AVX2/FMA or AVX-512 ("SkylakeX" or "Haswell"); "" when the core in use is fine or
/// OPENBLAS_CORETYPE is set already (by the user, or by us before executing again).
std::string better_blas_core();

/// When better_blas_core() names a core: sets OPENBLAS_CORETYPE and executes this program again
/// with the same arguments (does not return). Call first thing in main, before any thread
/// starts. Otherwise, or if the exec fails (with a warning), returns and nothing changed.
void run_again_with_better_blas_core(char** argv);

} // namespace kernels::cpu
