// Convolutions through oneDNN (built only with HARDNEG_DNNL, see native/build.mjs), on NHWC
// activations and HWIO filters: TensorFlow.js's own layouts, so the kernels read and write the
// wasm heap in place. Primitives are created once per shape and kept (creating one costs far
// more than running it on small inputs).
#pragma once
#include <cstdint>

namespace hn {

enum ConvKind { kConvForward = 0, kConvBackwardData = 1, kConvBackwardWeights = 2 };

/** Shapes of one convolution: x [N, H, W, C], filter [KH, KW, C, O], y [N, OH, OW, O]. */
struct ConvShape {
  int64_t N, H, W, C, O, OH, OW, KH, KW;
  int64_t strideH, strideW, dilationH, dilationW;
  int64_t padTop, padLeft, padBottom, padRight;
};

/**
 * kind 0: y ← conv(x, w); 1: dx ← the gradient of x given dy and w; 2: dw ← the gradient of w
 * given x and dy. The pointer that the kind writes is overwritten, the others are read.
 */
void dnnl_conv(int kind, const ConvShape& s, float* x, float* w, float* y);

/** oneDNN's name of the implementation it picked for a convolution of that kind and shape (tests, profiling). */
const char* dnnl_conv_impl(int kind, const ConvShape& s);

void dnnl_set_threads(int n);

}  // namespace hn
