// Placeholder; being implemented.
#include "libserve/onnx/model.hpp"
