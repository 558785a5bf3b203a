// Placeholder; implemented with the ONNX loader.
#include "libserve/tensor.hpp"
