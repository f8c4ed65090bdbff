// Node-API bindings of the kernels. Every kernel takes (heap, params): heap is a Uint8Array over
// the memory the tensors live in (TensorFlow.js's wasm heap), params a Float64Array of byte
// offsets into it and sizes, laid out per kernel as documented in src/engine/native_kernels.ts.
#include <node_api.h>

#include <cblas.h>

#include <cstdint>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"
#include "knn.h"
#ifdef HARDNEG_DNNL
#include <oneapi/dnnl/dnnl.hpp>

#include "dnnl_conv.h"
#endif
#include "pool.h"

namespace hn {

Pool& pool() {
  static Pool instance;
  return instance;
}

namespace {

struct Call {
  napi_env env;
  uint8_t* heap = nullptr;
  const double* p = nullptr;
  size_t n = 0;
  bool ok = false;

  Call(napi_env e, napi_callback_info info) : env(e) {
    size_t argc = 2;
    napi_value argv[2];
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
      fail("expected (heap, params)");
      return;
    }
    napi_typedarray_type type;
    size_t length;
    void* data;
    napi_value buffer;
    size_t offset;
    if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array) {
      fail("heap must be a Uint8Array");
      return;
    }
    heap = static_cast<uint8_t*>(data);
    if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_float64_array) {
      fail("params must be a Float64Array");
      return;
    }
    p = static_cast<const double*>(data);
    n = length;
    ok = true;
  }

  void fail(const char* message) {
    napi_throw_error(env, nullptr, message);
    ok = false;
  }

  bool need(size_t count) {
    if (ok && n < count) fail("too few params");
    return ok;
  }

  int64_t i(size_t k) const { return static_cast<int64_t>(p[k]); }
  float f(size_t k) const { return static_cast<float>(p[k]); }

  /** A float pointer at byte offset p[k]; offsets < 0 mean "none". */
  float* ptr(size_t k) const { return p[k] < 0 ? nullptr : reinterpret_cast<float*>(heap + static_cast<size_t>(p[k])); }
};

/** Reads ndim, then ndim-long shape and stride lists starting at p[k]. */
bool shapes(Call& c, size_t k, int lists, int& ndim, int64_t (*out)[8]) {
  if (!c.need(k + 1)) return false;
  ndim = static_cast<int>(c.i(k));
  if (ndim < 1 || ndim > 8) {
    c.fail("ndim must be 1..8");
    return false;
  }
  if (!c.need(k + 1 + static_cast<size_t>(lists * ndim))) return false;
  for (int l = 0; l < lists; l++)
    for (int d = 0; d < ndim; d++) out[l][d] = c.i(k + 1 + l * ndim + d);
  return true;
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// [transA, transB, M, N, K, alpha, a, b, c, bias, batch, strideA, strideB, strideC] (strides in elements)
napi_value Gemm(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(14)) return nullptr;
  gemm(c.p[0] != 0, c.p[1] != 0, c.i(2), c.i(3), c.i(4), c.f(5), c.ptr(6), c.ptr(7), c.ptr(8), c.ptr(9), c.i(10), c.i(11),
       c.i(12), c.i(13));
  return undefined(env);
}

// [op, out, a, b, ndim, shape…, aStrides…, bStrides…]
napi_value Binary(napi_env env, napi_callback_info info) {
  Call c(env, info);
  int ndim;
  int64_t s[3][8];
  if (!shapes(c, 4, 3, ndim, s)) return nullptr;
  binary(static_cast<int>(c.i(0)), c.ptr(1), c.ptr(2), c.ptr(3), ndim, s[0], s[1], s[2]);
  return undefined(env);
}

// [op, out, x, n]
napi_value Unary(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(4)) return nullptr;
  unary(static_cast<int>(c.i(0)), c.ptr(1), c.ptr(2), c.i(3));
  return undefined(env);
}

// [op, out, x, outer, mid, inner]
napi_value Reduce(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(6)) return nullptr;
  reduce(static_cast<int>(c.i(0)), c.ptr(1), c.ptr(2), c.i(3), c.i(4), c.i(5));
  return undefined(env);
}

// [out, x, ndim, shape…, xStrides…] (4-byte elements)
napi_value Copy(napi_env env, napi_callback_info info) {
  Call c(env, info);
  int ndim;
  int64_t s[2][8];
  if (!shapes(c, 2, 2, ndim, s)) return nullptr;
  strided_copy(reinterpret_cast<uint32_t*>(c.ptr(0)), reinterpret_cast<const uint32_t*>(c.ptr(1)), ndim, s[0], s[1]);
  return undefined(env);
}

// [y, x, n]
napi_value Gelu(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(3)) return nullptr;
  gelu(c.ptr(0), c.ptr(1), c.i(2));
  return undefined(env);
}

// [dx, x, dy, n]
napi_value GeluGrad(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(4)) return nullptr;
  gelu_grad(c.ptr(0), c.ptr(1), c.ptr(2), c.i(3));
  return undefined(env);
}

// [y, x, gamma, beta, rows, width, eps, withGelu]
napi_value LayerNorm(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(8)) return nullptr;
  layer_norm(c.ptr(0), c.ptr(1), c.ptr(2), c.ptr(3), c.i(4), c.i(5), c.f(6), c.p[7] != 0);
  return undefined(env);
}

// [dx, dgamma, dbeta, x, gamma, dy, rows, width, eps, withGelu]
napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(10)) return nullptr;
  layer_norm_grad(c.ptr(0), c.ptr(1), c.ptr(2), c.ptr(3), c.ptr(4), c.ptr(5), c.i(6), c.i(7), c.f(8), c.p[9] != 0);
  return undefined(env);
}

// [y, x, R, C, D]
napi_value GeluSumRows(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(5)) return nullptr;
  gelu_sum_rows(c.ptr(0), c.ptr(1), c.i(2), c.i(3), c.i(4));
  return undefined(env);
}

// [dx, x, dy, R, C, D]
napi_value GeluSumRowsGrad(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(6)) return nullptr;
  gelu_sum_rows_grad(c.ptr(0), c.ptr(1), c.ptr(2), c.i(3), c.i(4), c.i(5));
  return undefined(env);
}

// [u, q, k, v, mask, B, D, scale]
napi_value EdgeAttention(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(8)) return nullptr;
  edge_attention(c.ptr(0), c.ptr(1), c.ptr(2), c.ptr(3), c.ptr(4), c.i(5), c.i(6), c.f(7));
  return undefined(env);
}

// [dq, dk, dv, q, k, v, mask, du, B, D, scale]
napi_value EdgeAttentionGrad(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(11)) return nullptr;
  edge_attention_grad(c.ptr(0), c.ptr(1), c.ptr(2), c.ptr(3), c.ptr(4), c.ptr(5), c.ptr(6), c.ptr(7), c.i(8), c.i(9), c.f(10));
  return undefined(env);
}

// [loss, x, labels, N, C]
napi_value SoftmaxXent(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(5)) return nullptr;
  softmax_xent(c.ptr(0), c.ptr(1), reinterpret_cast<const int32_t*>(c.ptr(2)), c.i(3), c.i(4));
  return undefined(env);
}

// [dx, x, labels, dy, N, C]
napi_value SoftmaxXentGrad(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(6)) return nullptr;
  softmax_xent_grad(c.ptr(0), c.ptr(1), reinterpret_cast<const int32_t*>(c.ptr(2)), c.ptr(3), c.i(4), c.i(5));
  return undefined(env);
}

// knn(queries, gallery, params, bias, queryLabels, galleryLabels, outIndices, outScores) → Promise.
// params: Float64Array [queryCount, galleryCount, dim, k, symmetric, skipSelf]; bias and labels
// may be null. Runs off the JavaScript thread; the arrays are held until the promise settles.
struct KnnJob {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  std::vector<napi_ref> refs;
  KnnRequest request;
  const char* error = nullptr;
};

template <class T>
bool typed(napi_env env, napi_value v, napi_typedarray_type want, T** out, size_t* length, bool nullable) {
  napi_valuetype vt;
  napi_typeof(env, v, &vt);
  if (nullable && (vt == napi_null || vt == napi_undefined)) {
    *out = nullptr;
    *length = 0;
    return true;
  }
  napi_typedarray_type type;
  void* data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, &data, &buffer, &offset) != napi_ok || type != want) return false;
  *out = static_cast<T*>(data);
  return true;
}

napi_value Knn(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 8) {
    napi_throw_error(env, nullptr, "knn expects 8 arguments");
    return nullptr;
  }
  auto job = std::make_unique<KnnJob>();
  KnnRequest& r = job->request;
  float* queries;
  float* gallery;
  double* params;
  double* bias;
  int32_t* ql;
  int32_t* gl;
  size_t nq, ng, np, nb, nql, ngl, ni, ns;
  if (!typed(env, argv[0], napi_float32_array, &queries, &nq, false) || !typed(env, argv[1], napi_float32_array, &gallery, &ng, false) ||
      !typed(env, argv[2], napi_float64_array, &params, &np, false) || !typed(env, argv[3], napi_float64_array, &bias, &nb, true) ||
      !typed(env, argv[4], napi_int32_array, &ql, &nql, true) || !typed(env, argv[5], napi_int32_array, &gl, &ngl, true) ||
      !typed(env, argv[6], napi_int32_array, &r.outIndices, &ni, false) || !typed(env, argv[7], napi_float64_array, &r.outScores, &ns, false) ||
      np < 6) {
    napi_throw_type_error(env, nullptr, "knn: bad argument types");
    return nullptr;
  }
  r.queryCount = static_cast<int64_t>(params[0]);
  r.galleryCount = static_cast<int64_t>(params[1]);
  r.dim = static_cast<int64_t>(params[2]);
  r.k = static_cast<int64_t>(params[3]);
  r.symmetric = params[4] != 0;
  r.skipSelf = params[5] != 0;
  r.queries = queries;
  r.gallery = r.symmetric ? queries : gallery;
  r.bias = bias;
  r.queryLabels = ql;
  r.galleryLabels = gl;
  const size_t q = static_cast<size_t>(r.queryCount), g = static_cast<size_t>(r.galleryCount), d = static_cast<size_t>(r.dim),
               k = static_cast<size_t>(r.k);
  if (nq < q * d || ng < g * d || ni < q * k || ns < q * k || (bias && nb < g) || ((ql == nullptr) != (gl == nullptr)) ||
      (ql && (nql < q || ngl < g)) || r.galleryCount >= (int64_t{1} << 30)) {
    napi_throw_range_error(env, nullptr, "knn: array sizes do not match params");
    return nullptr;
  }
  for (size_t i = 0; i < 8; i++) {
    napi_valuetype vt;
    napi_typeof(env, argv[i], &vt);
    if (vt != napi_object) continue;  // the nullable arguments
    napi_ref ref = nullptr;
    if (napi_create_reference(env, argv[i], 1, &ref) == napi_ok) job->refs.push_back(ref);
  }
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "hardneg.knn", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(
      env, nullptr, name,
      [](napi_env, void* data) {
        auto* j = static_cast<KnnJob*>(data);
        if (!knn_search(j->request, &j->error) && j->error == nullptr) j->error = "knn failed";
      },
      [](napi_env env, napi_status, void* data) {
        std::unique_ptr<KnnJob> j(static_cast<KnnJob*>(data));
        for (auto ref : j->refs) napi_delete_reference(env, ref);
        napi_delete_async_work(env, j->work);
        napi_value result;
        if (j->error) {
          napi_value message;
          napi_create_string_utf8(env, j->error, NAPI_AUTO_LENGTH, &message);
          napi_create_error(env, nullptr, message, &result);
          napi_reject_deferred(env, j->deferred, result);
        } else {
          napi_get_undefined(env, &result);
          napi_resolve_deferred(env, j->deferred, result);
        }
      },
      job.get(), &job->work);
  napi_queue_async_work(env, job->work);
  job.release();
  return promise;
}

// [dx, x, dy, N, H, W, C, OH, OW, KH, KW, strideH, strideW, padTop, padLeft]
napi_value MaxPoolGrad(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(15)) return nullptr;
  max_pool_grad(c.ptr(0), c.ptr(1), c.ptr(2), c.i(3), c.i(4), c.i(5), c.i(6), c.i(7), c.i(8), c.i(9), c.i(10), c.i(11),
                c.i(12), c.i(13), c.i(14));
  return undefined(env);
}

// [y, x, scale, shift, res (−1: none), rows, C, relu]
napi_value ScaleShift(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(8)) return nullptr;
  scale_shift(c.ptr(0), c.ptr(1), c.ptr(2), c.ptr(3), c.ptr(4), c.i(5), c.i(6), c.p[7] != 0);
  return undefined(env);
}

// [dx, g (−1: none), y (−1 unless relu), dy, scale, rows, C, relu]
napi_value ScaleShiftGrad(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(8)) return nullptr;
  scale_shift_grad(c.ptr(0), c.ptr(1), c.ptr(2), c.ptr(3), c.ptr(4), c.i(5), c.i(6), c.p[7] != 0);
  return undefined(env);
}

// [dscale, dshift, x, y (−1 unless relu), dy, rows, C, relu]
napi_value ScaleShiftParamGrad(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(8)) return nullptr;
  scale_shift_param_grad(c.ptr(0), c.ptr(1), c.ptr(2), c.ptr(3), c.ptr(4), c.i(5), c.i(6), c.p[7] != 0);
  return undefined(env);
}

#ifdef HARDNEG_DNNL
// [kind, x, w, y, N, H, W, C, O, OH, OW, KH, KW, strideH, strideW, dilationH, dilationW, padTop, padLeft, padBottom, padRight]
ConvShape convShape(const Call& c) {
  return ConvShape{c.i(4),  c.i(5),  c.i(6),  c.i(7),  c.i(8),  c.i(9),  c.i(10), c.i(11), c.i(12),
                   c.i(13), c.i(14), c.i(15), c.i(16), c.i(17), c.i(18), c.i(19), c.i(20)};
}

napi_value Conv(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(21)) return nullptr;
  try {
    dnnl_conv(static_cast<int>(c.i(0)), convShape(c), c.ptr(1), c.ptr(2), c.ptr(3));
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("oneDNN convolution: ") + e.what()).c_str());
    return nullptr;
  }
  return undefined(env);
}

// The same params as conv (pointers ignored): oneDNN's implementation name, e.g. "brg:avx512_core".
napi_value ConvImpl(napi_env env, napi_callback_info info) {
  Call c(env, info);
  if (!c.need(21)) return nullptr;
  napi_value out;
  try {
    napi_create_string_utf8(env, dnnl_conv_impl(static_cast<int>(c.i(0)), convShape(c)), NAPI_AUTO_LENGTH, &out);
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("oneDNN convolution: ") + e.what()).c_str());
    return nullptr;
  }
  return out;
}
#endif

/** setThreads(n): the thread count of every kernel, products included; returns the count in use. */
napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t n = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    napi_throw_error(env, nullptr, "setThreads expects a positive integer");
    return nullptr;
  }
  openblas_set_num_threads(1);  // the pool parallelises the products itself (kernels.cc, gemm)
  pool().resize(n);
#ifdef HARDNEG_DNNL
  dnnl_set_threads(n);  // oneDNN runs on OpenMP's threads, not the pool's
#endif
  napi_value out;
  napi_create_int32(env, pool().threads(), &out);
  return out;
}

/** info(): { blas: OpenBLAS's build string, threads, hardwareThreads }. */
napi_value Info(napi_env env, napi_callback_info) {
  napi_value out, blas, threads, hw;
  napi_create_object(env, &out);
  const char* config = openblas_get_config();
  napi_create_string_utf8(env, config ? config : "", NAPI_AUTO_LENGTH, &blas);
  napi_create_int32(env, pool().threads(), &threads);
  napi_create_int32(env, static_cast<int32_t>(std::thread::hardware_concurrency()), &hw);
  napi_set_named_property(env, out, "blas", blas);
  napi_set_named_property(env, out, "threads", threads);
  napi_set_named_property(env, out, "hardwareThreads", hw);
  // oneDNN's version when the addon was built with it, else "" (doctor and CI check this).
  napi_value dnnl;
#ifdef HARDNEG_DNNL
  const dnnl_version_t* v = dnnl::version();
  const std::string version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  napi_create_string_utf8(env, version.c_str(), NAPI_AUTO_LENGTH, &dnnl);
#else
  napi_create_string_utf8(env, "", 0, &dnnl);
#endif
  napi_set_named_property(env, out, "dnnl", dnnl);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {
      {"gemm", Gemm},
      {"binary", Binary},
      {"unary", Unary},
      {"reduce", Reduce},
      {"copy", Copy},
      {"gelu", Gelu},
      {"geluGrad", GeluGrad},
      {"layerNorm", LayerNorm},
      {"layerNormGrad", LayerNormGrad},
      {"geluSumRows", GeluSumRows},
      {"geluSumRowsGrad", GeluSumRowsGrad},
      {"edgeAttention", EdgeAttention},
      {"edgeAttentionGrad", EdgeAttentionGrad},
      {"softmaxXent", SoftmaxXent},
      {"softmaxXentGrad", SoftmaxXentGrad},
      {"maxPoolGrad", MaxPoolGrad},
      {"scaleShift", ScaleShift},
      {"scaleShiftGrad", ScaleShiftGrad},
      {"scaleShiftParamGrad", ScaleShiftParamGrad},
#ifdef HARDNEG_DNNL
      {"conv", Conv},
      {"convImpl", ConvImpl},
#endif
      {"knn", Knn},
      {"setThreads", SetThreads},
      {"info", Info},
  };
  for (const auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  return exports;
}

}  // namespace
}  // namespace hn

NAPI_MODULE(NODE_GYP_MODULE_NAME, hn::Init)
