// Float32 kernels over raw pointers (row-major, element strides). Every kernel is multi-threaded
// through hn::pool() above a size threshold; the matrix product goes to OpenBLAS.
#pragma once
#include <cstdint>

namespace hn {

enum BinaryOp { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kMaximum = 4, kMinimum = 5, kSquaredDifference = 6 };
enum UnaryOp { kExp = 0, kErf = 1, kSigmoid = 2, kSqrt = 3, kRsqrt = 4, kSquare = 5, kNeg = 6, kAbs = 7, kLog = 8, kRelu = 9, kReciprocal = 10 };
enum ReduceOp { kSum = 0, kMean = 1, kMax = 2, kMin = 3 };

/** C[b] = alpha·op(A[b])·op(B[b]) (+ bias broadcast over rows), b < batch, C is M×N. */
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B, float* C,
          const float* bias, int64_t batch, int64_t strideA, int64_t strideB, int64_t strideC);

/** out[i] = a[i·as] op b[i·bs] over an ndim index space (ndim ≤ 8); strides in elements, 0 broadcasts. */
void binary(int op, float* out, const float* a, const float* b, int ndim, const int64_t* shape, const int64_t* as,
            const int64_t* bs);

void unary(int op, float* out, const float* x, int64_t n);

/** x is [outer, mid, inner]; out[o, i] = reduce over m of x[o, m, i]. */
void reduce(int op, float* out, const float* x, int64_t outer, int64_t mid, int64_t inner);

/** out (contiguous, ndim ≤ 8 dims) ← x read with element strides xs: slices and transposes of 4-byte data. */
void strided_copy(uint32_t* out, const uint32_t* x, int ndim, const int64_t* shape, const int64_t* xs);

void gelu(float* y, const float* x, int64_t n);
void gelu_grad(float* dx, const float* x, const float* dy, int64_t n);

/** y = LayerNorm(f(x))·γ + β over rows of `width`, f = GELU when withGelu, else identity. */
void layer_norm(float* y, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t width, float eps,
                bool withGelu);
void layer_norm_grad(float* dx, float* dgamma, float* dbeta, const float* x, const float* gamma, const float* dy,
                     int64_t rows, int64_t width, float eps, bool withGelu);

/** y[r, d] = Σ_c GELU(x[r, c, d]) for x [R, C, D]; the gradient dx[r, c, d] = dy[r, d]·GELU′(x[r, c, d]). */
void gelu_sum_rows(float* y, const float* x, int64_t R, int64_t C, int64_t D);
void gelu_sum_rows_grad(float* dx, const float* x, const float* dy, int64_t R, int64_t C, int64_t D);

/** The edge model's two-key attention (see src/nn/fused.ts): q [B,B,D], k, v [B,D], mask [B,B,2]. */
void edge_attention(float* u, const float* q, const float* k, const float* v, const float* mask, int64_t B, int64_t D,
                    float scale);
void edge_attention_grad(float* dq, float* dk, float* dv, const float* q, const float* k, const float* v,
                         const float* mask, const float* du, int64_t B, int64_t D, float scale);

/** Per-row softmax cross-entropy: loss[i] = log Σ_j exp(x[i,j] − m_i) − (x[i,y_i] − m_i), m_i = max_j x[i,j]. */
void softmax_xent(float* loss, const float* x, const int32_t* labels, int64_t N, int64_t C);
/** Its gradient: dx[i,j] = dy[i]·(softmax(x[i])_j − [j = y_i]). */
void softmax_xent_grad(float* dx, const float* x, const int32_t* labels, const float* dy, int64_t N, int64_t C);

/**
 * Max-pooling's gradient on NHWC x [N, H, W, C] with an implicit −∞ padding (top PT, left PL):
 * each dy [N, OH, OW, C] goes to the first maximum of its window in row-major order (PyTorch's
 * choice among ties). The wasm backend's own MaxPoolGrad loses gradient (src/nn/pooling.ts).
 */
void max_pool_grad(float* dx, const float* x, const float* dy, int64_t N, int64_t H, int64_t W, int64_t C, int64_t OH,
                   int64_t OW, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PT, int64_t PL);

/**
 * Frozen BatchNorm2d (+ residual) (+ ReLU) in one pass over NHWC rows of C channels:
 * y = f(x·scale + shift + res), f = ReLU when relu, res optional (null).
 */
void scale_shift(float* y, const float* x, const float* scale, const float* shift, const float* res, int64_t rows,
                 int64_t C, bool relu);
/**
 * Its input gradient: g = dy masked by y > 0 (when relu), dx = g·scale (g itself, the residual's
 * gradient, when scale is null); g is also written when not null.
 */
void scale_shift_grad(float* dx, float* g, const float* y, const float* dy, const float* scale, int64_t rows, int64_t C,
                      bool relu);
/** Its parameter gradients: dscale = Σ_rows g·x, dshift = Σ_rows g. */
void scale_shift_param_grad(float* dscale, float* dshift, const float* x, const float* y, const float* dy, int64_t rows,
                            int64_t C, bool relu);

}  // namespace hn
