// Float32 kernels: see kernels.h. Reductions use 16 float lanes (vectorised, and more accurate
// than one running sum) combined in double across blocks and threads.
#include "kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "pool.h"
#include "vmath.h"

namespace hn {

namespace {

constexpr int64_t kGrain = 16384;  // elements per thread below which a kernel stays serial
constexpr int kLanes = 16;

float lanes_total(float* acc) {
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; l++) acc[l] += acc[l + w];
  return acc[0];
}

float sum16(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; l++) acc[l] += x[i + l];
  float tail = 0;
  for (; i < n; i++) tail += x[i];
  return lanes_total(acc) + tail;
}

float dot16(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; l++) acc[l] += a[i + l] * b[i + l];
  float tail = 0;
  for (; i < n; i++) tail += a[i] * b[i];
  return lanes_total(acc) + tail;
}

/** Σ (x − m)². */
float centred_sq16(const float* x, float m, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; l++) {
      float c = x[i + l] - m;
      acc[l] += c * c;
    }
  float tail = 0;
  for (; i < n; i++) tail += (x[i] - m) * (x[i] - m);
  return lanes_total(acc) + tail;
}

/** Sum of a long contiguous run: 16-lane float blocks of 4096, blocks added in double. */
double long_sum(const float* x, int64_t n) {
  double total = 0;
  for (int64_t i = 0; i < n; i += 4096) total += sum16(x + i, std::min<int64_t>(4096, n - i));
  return total;
}

float max_run(const float* x, int64_t n, bool isMax) {
  float m = x[0];
  if (isMax) {
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
  } else {
    for (int64_t i = 1; i < n; i++) m = x[i] < m ? x[i] : m;
  }
  return m;
}

template <class F>
void binary_loop(F f, float* out, const float* a, const float* b, int ndim, const int64_t* shape, const int64_t* as,
                 const int64_t* bs) {
  const int64_t inner = shape[ndim - 1];
  int64_t outer = 1;
  for (int d = 0; d < ndim - 1; d++) outer *= shape[d];
  const int64_t ia = as[ndim - 1], ib = bs[ndim - 1];
  auto row = [&](int64_t o, int64_t j0, int64_t j1) {
    int64_t offA = 0, offB = 0, rem = o;
    for (int d = ndim - 2; d >= 0; d--) {
      int64_t idx = rem % shape[d];
      rem /= shape[d];
      offA += idx * as[d];
      offB += idx * bs[d];
    }
    const float* pa = a + offA;
    const float* pb = b + offB;
    float* po = out + o * inner;
    if (ia == 1 && ib == 1) {
      for (int64_t j = j0; j < j1; j++) po[j] = f(pa[j], pb[j]);
    } else if (ia == 1 && ib == 0) {
      const float bv = *pb;
      for (int64_t j = j0; j < j1; j++) po[j] = f(pa[j], bv);
    } else if (ia == 0 && ib == 1) {
      const float av = *pa;
      for (int64_t j = j0; j < j1; j++) po[j] = f(av, pb[j]);
    } else {
      for (int64_t j = j0; j < j1; j++) po[j] = f(pa[j * ia], pb[j * ib]);
    }
  };
  if (outer >= 4 || inner < kGrain) {
    parallel_for(outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t o0, int64_t o1, int) {
      for (int64_t o = o0; o < o1; o++) row(o, 0, inner);
    });
  } else {
    for (int64_t o = 0; o < outer; o++) parallel_for(inner, kGrain, [&](int64_t j0, int64_t j1, int) { row(o, j0, j1); });
  }
}

template <class F>
void unary_loop(F f, float* out, const float* x, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) out[i] = f(x[i]);
  });
}

}  // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B, float* C,
          const float* bias, int64_t batch, int64_t strideA, int64_t strideB, int64_t strideC) {
  if (M == 0 || N == 0 || batch == 0) return;
  const int64_t lda = transA ? M : K, ldb = transB ? K : N;
  // OpenBLAS runs single-threaded; the pool splits the product into blocks of rows (or of
  // columns when there are few rows), each one OpenBLAS call, taken dynamically by the threads.
  const bool byRows = M >= N;
  const int64_t split = byRows ? M : N;
  const int64_t macs = M * N * std::max<int64_t>(K, 1);
  const int64_t blocks = macs < (int64_t{1} << 21) ? 1 : std::max<int64_t>(1, std::min<int64_t>(4 * pool().threads(), split / 64));
  auto task = [&](int t) {
    const int64_t b = t / blocks, i = t % blocks;
    const int64_t s0 = split * i / blocks, s1 = split * (i + 1) / blocks;
    const float* a = A + b * strideA;
    const float* bm = B + b * strideB;
    float* c = C + b * strideC;
    int64_t m = M, n = N;
    if (byRows) {
      a += transA ? s0 : s0 * lda;
      c += s0 * N;
      m = s1 - s0;
    } else {
      bm += transB ? s0 * ldb : s0;
      c += s0;
      n = s1 - s0;
    }
    if (m == 0 || n == 0) return;
    float beta = 0;
    if (bias != nullptr) {
      const float* bs = byRows ? bias : bias + s0;
      for (int64_t r = 0; r < m; r++) std::memcpy(c + r * N, bs, n * sizeof(float));
      beta = 1;
    }
    if (K == 0) {
      if (bias == nullptr)
        for (int64_t r = 0; r < m; r++) std::memset(c + r * N, 0, n * sizeof(float));
      return;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, K, alpha, a,
                lda, bm, ldb, beta, c, N);
  };
  const int64_t tasks = batch * blocks;
  if (tasks == 1) {
    task(0);
  } else {
    pool().run(static_cast<int>(tasks), task);
  }
}

void binary(int op, float* out, const float* a, const float* b, int ndim, const int64_t* shape, const int64_t* as,
            const int64_t* bs) {
  switch (op) {
    case kAdd: return binary_loop([](float x, float y) { return x + y; }, out, a, b, ndim, shape, as, bs);
    case kSub: return binary_loop([](float x, float y) { return x - y; }, out, a, b, ndim, shape, as, bs);
    case kMul: return binary_loop([](float x, float y) { return x * y; }, out, a, b, ndim, shape, as, bs);
    case kDiv: return binary_loop([](float x, float y) { return x / y; }, out, a, b, ndim, shape, as, bs);
    case kMaximum: return binary_loop([](float x, float y) { return x != x || x > y ? x : y; }, out, a, b, ndim, shape, as, bs);
    case kMinimum: return binary_loop([](float x, float y) { return x != x || x < y ? x : y; }, out, a, b, ndim, shape, as, bs);
    case kSquaredDifference:
      return binary_loop([](float x, float y) { return (x - y) * (x - y); }, out, a, b, ndim, shape, as, bs);
  }
}

void unary(int op, float* out, const float* x, int64_t n) {
  switch (op) {
    case kExp: return unary_loop([](float v) { return fast_exp(v); }, out, x, n);
    case kErf: return unary_loop([](float v) { return fast_erf(v); }, out, x, n);
    case kSigmoid: return unary_loop([](float v) { return fast_sigmoid(v); }, out, x, n);
    case kSqrt: return unary_loop([](float v) { return std::sqrt(v); }, out, x, n);
    case kRsqrt: return unary_loop([](float v) { return 1.0f / std::sqrt(v); }, out, x, n);
    case kSquare: return unary_loop([](float v) { return v * v; }, out, x, n);
    case kNeg: return unary_loop([](float v) { return -v; }, out, x, n);
    case kAbs: return unary_loop([](float v) { return std::fabs(v); }, out, x, n);
    case kLog: return unary_loop([](float v) { return std::log(v); }, out, x, n);
    case kRelu: return unary_loop([](float v) { return v > 0 ? v : (v != v ? v : 0.0f); }, out, x, n);
    case kReciprocal: return unary_loop([](float v) { return 1.0f / v; }, out, x, n);
  }
}

void reduce(int op, float* out, const float* x, int64_t outer, int64_t mid, int64_t inner) {
  const bool isSum = op == kSum || op == kMean;
  const double scale = op == kMean ? 1.0 / static_cast<double>(mid) : 1.0;
  const int threads = pool().threads();
  if (inner == 1) {
    if (outer >= threads) {
      parallel_for(outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(mid, 1)), [&](int64_t o0, int64_t o1, int) {
        for (int64_t o = o0; o < o1; o++) {
          const float* row = x + o * mid;
          out[o] = isSum ? static_cast<float>(long_sum(row, mid) * scale) : max_run(row, mid, op == kMax);
        }
      });
      return;
    }
    for (int64_t o = 0; o < outer; o++) {
      const float* row = x + o * mid;
      std::vector<double> part(num_parts(mid, kGrain), 0.0);
      std::vector<float> ext(part.size(), 0.0f);
      parallel_for(mid, kGrain, [&](int64_t m0, int64_t m1, int p) {
        if (isSum) part[p] = long_sum(row + m0, m1 - m0);
        else ext[p] = max_run(row + m0, m1 - m0, op == kMax);
      });
      if (isSum) {
        double total = 0;
        for (double v : part) total += v;
        out[o] = static_cast<float>(total * scale);
      } else {
        float m = ext[0];
        for (float v : ext) m = op == kMax ? (v > m ? v : m) : (v < m ? v : m);
        out[o] = m;
      }
    }
    return;
  }
  // Column reductions: out[o, :] = reduce over m of x[o, m, :].
  auto columns = [&](const float* base, int64_t m0, int64_t m1, double* acc, float* ext) {
    if (isSum) {
      for (int64_t m = m0; m < m1; m++) {
        const float* row = base + m * inner;
        for (int64_t i = 0; i < inner; i++) acc[i] += row[i];
      }
    } else {
      for (int64_t m = m0; m < m1; m++) {
        const float* row = base + m * inner;
        if (op == kMax) {
          for (int64_t i = 0; i < inner; i++) ext[i] = row[i] > ext[i] ? row[i] : ext[i];
        } else {
          for (int64_t i = 0; i < inner; i++) ext[i] = row[i] < ext[i] ? row[i] : ext[i];
        }
      }
    }
  };
  if (outer >= threads) {
    parallel_for(outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(mid * inner, 1)), [&](int64_t o0, int64_t o1, int) {
      std::vector<double> acc(inner);
      for (int64_t o = o0; o < o1; o++) {
        const float* base = x + o * mid * inner;
        float* dst = out + o * inner;
        if (isSum) {
          std::fill(acc.begin(), acc.end(), 0.0);
          columns(base, 0, mid, acc.data(), nullptr);
          for (int64_t i = 0; i < inner; i++) dst[i] = static_cast<float>(acc[i] * scale);
        } else {
          std::memcpy(dst, base, inner * sizeof(float));
          columns(base, 1, mid, nullptr, dst);
        }
      }
    });
    return;
  }
  for (int64_t o = 0; o < outer; o++) {
    const float* base = x + o * mid * inner;
    float* dst = out + o * inner;
    // parallel_for(mid, 1, …) cuts [0, mid) into exactly num_parts(mid, 1) ranges.
    const int parts = num_parts(mid * inner, kGrain) > 1 ? num_parts(mid, 1) : 1;
    std::vector<double> acc(isSum ? parts * inner : 0, 0.0);
    std::vector<float> ext(isSum ? 0 : parts * inner);
    auto body = [&](int64_t m0, int64_t m1, int p) {
      if (!isSum) std::memcpy(ext.data() + p * inner, base + m0 * inner, inner * sizeof(float));
      columns(base, isSum ? m0 : m0 + 1, m1, acc.data() + (isSum ? p * inner : 0), ext.data() + (isSum ? 0 : p * inner));
    };
    if (parts == 1) body(0, mid, 0);
    else parallel_for(mid, 1, body);
    for (int64_t i = 0; i < inner; i++) {
      if (isSum) {
        double total = 0;
        for (int p = 0; p < parts; p++) total += acc[p * inner + i];
        dst[i] = static_cast<float>(total * scale);
      } else {
        float m = ext[i];
        for (int p = 1; p < parts; p++) {
          float v = ext[p * inner + i];
          m = op == kMax ? (v > m ? v : m) : (v < m ? v : m);
        }
        dst[i] = m;
      }
    }
  }
}

void strided_copy(uint32_t* out, const uint32_t* x, int ndim, const int64_t* shape, const int64_t* xs) {
  const int64_t C = shape[ndim - 1], sc = xs[ndim - 1];
  const int64_t R = ndim >= 2 ? shape[ndim - 2] : 1, sr = ndim >= 2 ? xs[ndim - 2] : 0;
  int64_t outer = 1;
  for (int d = 0; d < ndim - 2; d++) outer *= shape[d];
  auto base = [&](int64_t o) {
    int64_t off = 0, rem = o;
    for (int d = ndim - 3; d >= 0; d--) {
      off += (rem % shape[d]) * xs[d];
      rem /= shape[d];
    }
    return x + off;
  };
  if (sc == 1) {
    parallel_for(outer * R, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; r++) std::memcpy(out + r * C, base(r / R) + (r % R) * sr, C * sizeof(uint32_t));
    });
    return;
  }
  // Strided rows (transposes): 32×32 tiles so that both sides stay in cache.
  constexpr int64_t T = 32;
  const int64_t tileRows = (R + T - 1) / T;
  parallel_for(outer * tileRows, std::max<int64_t>(1, kGrain / std::max<int64_t>(T * C, 1)), [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / tileRows, i0 = (t % tileRows) * T, i1 = std::min(R, i0 + T);
      const uint32_t* src = base(o);
      uint32_t* dst = out + o * R * C;
      for (int64_t j0 = 0; j0 < C; j0 += T) {
        const int64_t j1 = std::min(C, j0 + T);
        for (int64_t i = i0; i < i1; i++)
          for (int64_t j = j0; j < j1; j++) dst[i * C + j] = src[i * sr + j * sc];
      }
    }
  });
}

void gelu(float* y, const float* x, int64_t n) { unary_loop([](float v) { return hn::gelu(v); }, y, x, n); }

void gelu_grad(float* dx, const float* x, const float* dy, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) dx[i] = dy[i] * hn::gelu_grad(x[i]);
  });
}

void layer_norm(float* y, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t width, float eps,
                bool withGelu) {
  const float inv_w = 1.0f / static_cast<float>(width);
  parallel_for(rows, std::max<int64_t>(1, kGrain / width), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * width;
      float* yr = y + r * width;
      const float* g = xr;
      if (withGelu) {
        for (int64_t j = 0; j < width; j++) yr[j] = hn::gelu(xr[j]);
        g = yr;
      }
      const float mean = sum16(g, width) * inv_w;
      const float var = centred_sq16(g, mean, width) * inv_w;
      const float inv = 1.0f / std::sqrt(var + eps);
      for (int64_t j = 0; j < width; j++) yr[j] = (g[j] - mean) * inv * gamma[j] + beta[j];
    }
  });
}

void layer_norm_grad(float* dx, float* dgamma, float* dbeta, const float* x, const float* gamma, const float* dy,
                     int64_t rows, int64_t width, float eps, bool withGelu) {
  const float inv_w = 1.0f / static_cast<float>(width);
  const int parts = num_parts(rows, std::max<int64_t>(1, kGrain / width));
  std::vector<double> acc(2 * parts * width, 0.0);
  parallel_for(rows, std::max<int64_t>(1, kGrain / width), [&](int64_t r0, int64_t r1, int p) {
    std::vector<float> buf(2 * width);
    float* xhat = buf.data();
    float* dxhat = buf.data() + width;
    double* ag = acc.data() + 2 * p * width;
    double* ab = ag + width;
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * width;
      const float* dyr = dy + r * width;
      float* dxr = dx + r * width;
      if (withGelu) {
        for (int64_t j = 0; j < width; j++) xhat[j] = hn::gelu(xr[j]);
      } else {
        std::memcpy(xhat, xr, width * sizeof(float));
      }
      const float mean = sum16(xhat, width) * inv_w;
      const float var = centred_sq16(xhat, mean, width) * inv_w;
      const float inv = 1.0f / std::sqrt(var + eps);
      for (int64_t j = 0; j < width; j++) {
        xhat[j] = (xhat[j] - mean) * inv;
        dxhat[j] = dyr[j] * gamma[j];
        ag[j] += static_cast<double>(dyr[j] * xhat[j]);
        ab[j] += static_cast<double>(dyr[j]);
      }
      const float m1 = sum16(dxhat, width) * inv_w;
      const float m2 = dot16(dxhat, xhat, width) * inv_w;
      if (withGelu) {
        for (int64_t j = 0; j < width; j++) dxr[j] = inv * ((dxhat[j] - m1) - xhat[j] * m2) * hn::gelu_grad(xr[j]);
      } else {
        for (int64_t j = 0; j < width; j++) dxr[j] = inv * ((dxhat[j] - m1) - xhat[j] * m2);
      }
    }
  });
  for (int64_t j = 0; j < width; j++) {
    double g = 0, b = 0;
    for (int p = 0; p < parts; p++) {
      g += acc[2 * p * width + j];
      b += acc[(2 * p + 1) * width + j];
    }
    dgamma[j] = static_cast<float>(g);
    dbeta[j] = static_cast<float>(b);
  }
}

void gelu_sum_rows(float* y, const float* x, int64_t R, int64_t C, int64_t D) {
  parallel_for(R, std::max<int64_t>(1, kGrain / std::max<int64_t>(C * D, 1)), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++) {
      float* yr = y + r * D;
      std::fill(yr, yr + D, 0.0f);
      for (int64_t c = 0; c < C; c++) {
        const float* xr = x + (r * C + c) * D;
        for (int64_t d = 0; d < D; d++) yr[d] += hn::gelu(xr[d]);
      }
    }
  });
}

void gelu_sum_rows_grad(float* dx, const float* x, const float* dy, int64_t R, int64_t C, int64_t D) {
  parallel_for(R * C, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t e0, int64_t e1, int) {
    for (int64_t e = e0; e < e1; e++) {
      const float* dyr = dy + (e / C) * D;
      const float* xr = x + e * D;
      float* dxr = dx + e * D;
      for (int64_t d = 0; d < D; d++) dxr[d] = dyr[d] * hn::gelu_grad(xr[d]);
    }
  });
}

namespace {

/** Softmax of the two scaled scores of edge (r, c). */
inline void edge_weights(const float* qrc, const float* kr, const float* kc, int64_t D, float scale, float& a1, float& a2) {
  const float s1 = dot16(qrc, kr, D) * scale, s2 = dot16(qrc, kc, D) * scale;
  const float m = s1 > s2 ? s1 : s2;
  const float e1 = std::exp(s1 - m), e2 = std::exp(s2 - m);
  const float sum = e1 + e2;
  a1 = e1 / sum;
  a2 = e2 / sum;
}

}  // namespace

void edge_attention(float* u, const float* q, const float* k, const float* v, const float* mask, int64_t B, int64_t D,
                    float scale) {
  parallel_for(B, 1, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++)
      for (int64_t c = 0; c < B; c++) {
        const int64_t e = r * B + c;
        float a1, a2;
        edge_weights(q + e * D, k + r * D, k + c * D, D, scale, a1, a2);
        const float w1 = a1 * mask[2 * e], w2 = a2 * mask[2 * e + 1];
        const float* vr = v + r * D;
        const float* vc = v + c * D;
        float* ue = u + e * D;
        for (int64_t d = 0; d < D; d++) ue[d] = w1 * vr[d] + w2 * vc[d];
      }
  });
}

void edge_attention_grad(float* dq, float* dk, float* dv, const float* q, const float* k, const float* v,
                         const float* mask, const float* du, int64_t B, int64_t D, float scale) {
  // Row r's own (source) terms go straight to dk[r], dv[r]; the target terms of node c come from
  // every row, so each thread sums them into its own buffers, added at the end.
  const int parts = num_parts(B, 1);
  std::vector<float> targets(static_cast<size_t>(parts) * 2 * B * D, 0.0f);
  parallel_for(B, 1, [&](int64_t r0, int64_t r1, int p) {
    float* dkT = targets.data() + static_cast<size_t>(p) * 2 * B * D;
    float* dvT = dkT + B * D;
    for (int64_t r = r0; r < r1; r++) {
      float* dkr = dk + r * D;
      float* dvr = dv + r * D;
      std::fill(dkr, dkr + D, 0.0f);
      std::fill(dvr, dvr + D, 0.0f);
      const float* kr = k + r * D;
      const float* vr = v + r * D;
      for (int64_t c = 0; c < B; c++) {
        const int64_t e = r * B + c;
        const float* qe = q + e * D;
        const float* due = du + e * D;
        const float* kc = k + c * D;
        const float* vc = v + c * D;
        float a1, a2;
        edge_weights(qe, kr, kc, D, scale, a1, a2);
        const float m1 = mask[2 * e], m2 = mask[2 * e + 1];
        const float da1 = dot16(due, vr, D) * m1, da2 = dot16(due, vc, D) * m2;
        const float dot = a1 * da1 + a2 * da2;
        const float ds1 = a1 * (da1 - dot) * scale, ds2 = a2 * (da2 - dot) * scale;
        const float w1 = a1 * m1, w2 = a2 * m2;
        float* dqe = dq + e * D;
        float* dkc = dkT + c * D;
        float* dvc = dvT + c * D;
        for (int64_t d = 0; d < D; d++) {
          dqe[d] = ds1 * kr[d] + ds2 * kc[d];
          dkr[d] += ds1 * qe[d];
          dvr[d] += w1 * due[d];
          dkc[d] += ds2 * qe[d];
          dvc[d] += w2 * due[d];
        }
      }
    }
  });
  parallel_for(B * D, kGrain, [&](int64_t i0, int64_t i1, int) {
    for (int p = 0; p < parts; p++) {
      const float* dkT = targets.data() + static_cast<size_t>(p) * 2 * B * D;
      const float* dvT = dkT + B * D;
      for (int64_t i = i0; i < i1; i++) {
        dk[i] += dkT[i];
        dv[i] += dvT[i];
      }
    }
  });
}

namespace {

/** Row maximum and Σ exp(x − max) of one row, the exponentials left in `e`. */
void softmax_row(const float* x, int64_t C, float* e, float& m, float& sum) {
  m = max_run(x, C, true);
  for (int64_t j = 0; j < C; j++) e[j] = fast_exp(x[j] - m);
  sum = static_cast<float>(long_sum(e, C));
}

}  // namespace

void softmax_xent(float* loss, const float* x, const int32_t* labels, int64_t N, int64_t C) {
  parallel_for(N, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)), [&](int64_t i0, int64_t i1, int) {
    std::vector<float> e(C);
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = x + i * C;
      float m, sum;
      softmax_row(xi, C, e.data(), m, sum);
      loss[i] = std::log(sum) - (xi[labels[i]] - m);
    }
  });
}

void softmax_xent_grad(float* dx, const float* x, const int32_t* labels, const float* dy, int64_t N, int64_t C) {
  parallel_for(N, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)), [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = x + i * C;
      float* di = dx + i * C;
      float m, sum;
      softmax_row(xi, C, di, m, sum);
      const float scale = dy[i] / sum;
      for (int64_t j = 0; j < C; j++) di[j] *= scale;
      di[labels[i]] -= dy[i];
    }
  });
}

void max_pool_grad(float* dx, const float* x, const float* dy, int64_t N, int64_t H, int64_t W, int64_t C, int64_t OH,
                   int64_t OW, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PT, int64_t PL) {
  // Windows overlap when the stride is below the kernel, so a part owns whole (image, channel
  // block) planes of dx and walks their outputs serially.
  const int64_t CB = 16, blocks = (C + CB - 1) / CB;
  parallel_for(N * blocks, 1, [&](int64_t b0, int64_t b1, int) {
    std::vector<int64_t> best(CB);
    std::vector<float> top(CB);
    for (int64_t b = b0; b < b1; b++) {
      const int64_t n = b / blocks, c0 = (b % blocks) * CB, cn = std::min(CB, C - c0);
      const float* xn = x + n * H * W * C + c0;
      float* dxn = dx + n * H * W * C + c0;
      for (int64_t i = 0; i < H * W; i++) std::memset(dxn + i * C, 0, sizeof(float) * cn);
      for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
          std::fill(best.begin(), best.end(), int64_t{-1});
          for (int64_t kh = 0; kh < KH; kh++) {
            const int64_t h = oh * SH - PT + kh;
            if (h < 0 || h >= H) continue;
            for (int64_t kw = 0; kw < KW; kw++) {
              const int64_t w = ow * SW - PL + kw;
              if (w < 0 || w >= W) continue;
              const int64_t at = (h * W + w) * C;
              for (int64_t c = 0; c < cn; c++) {
                const float v = xn[at + c];
                // Strictly greater: the first maximum in row-major order wins, as in PyTorch.
                if (best[c] < 0 || v > top[c]) best[c] = at, top[c] = v;
              }
            }
          }
          const float* g = dy + ((n * OH + oh) * OW + ow) * C + c0;
          for (int64_t c = 0; c < cn; c++)
            if (best[c] >= 0) dxn[best[c] + c] += g[c];
        }
      }
    }
  });
}

void scale_shift(float* y, const float* x, const float* scale, const float* shift, const float* res, int64_t rows,
                 int64_t C, bool relu) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * C;
      const float* rr = res ? res + r * C : nullptr;
      float* yr = y + r * C;
      for (int64_t c = 0; c < C; c++) {
        float v = xr[c] * scale[c] + shift[c];
        if (rr) v += rr[c];
        yr[c] = relu ? std::max(v, 0.0f) : v;
      }
    }
  });
}

void scale_shift_grad(float* dx, float* g, const float* y, const float* dy, const float* scale, int64_t rows, int64_t C,
                      bool relu) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++) {
      const float* yr = relu ? y + r * C : nullptr;
      const float* dr = dy + r * C;
      float* xr = dx + r * C;
      float* gr = g ? g + r * C : nullptr;
      for (int64_t c = 0; c < C; c++) {
        const float v = yr && !(yr[c] > 0.0f) ? 0.0f : dr[c];
        xr[c] = scale ? v * scale[c] : v;
        if (gr) gr[c] = v;
      }
    }
  });
}

void scale_shift_param_grad(float* dscale, float* dshift, const float* x, const float* y, const float* dy, int64_t rows,
                            int64_t C, bool relu) {
  // Per-part partial sums in double, added in part order: the result does not depend on timing.
  const int parts = num_parts(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)));
  std::vector<double> acc(static_cast<size_t>(parts) * 2 * C, 0.0);
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1, int p) {
    double* as = acc.data() + static_cast<size_t>(p) * 2 * C;
    double* ab = as + C;
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * C;
      const float* yr = y + r * C;
      const float* dr = dy + r * C;
      for (int64_t c = 0; c < C; c++) {
        const float v = relu && !(yr[c] > 0.0f) ? 0.0f : dr[c];
        as[c] += static_cast<double>(v) * xr[c];
        ab[c] += v;
      }
    }
  });
  for (int64_t c = 0; c < C; c++) {
    double s = 0, b = 0;
    for (int p = 0; p < parts; p++) s += acc[static_cast<size_t>(p) * 2 * C + c], b += acc[static_cast<size_t>(p) * 2 * C + C + c];
    dscale[c] = static_cast<float>(s);
    dshift[c] = static_cast<float>(b);
  }
}

}  // namespace hn
