// oneDNN convolutions (see dnnl_conv.h). The activations stay in TensorFlow.js's NHWC layout and
// are handed to oneDNN in place (its AVX2/AVX-512 kernels take NHWC directly); only the filter
// goes through a reorder into the blocked layout the primitive asks for, which is cheap next to
// the convolution. Where the primitive wants another activation layout too, temporaries are
// kept with the primitive so that no large buffer is allocated per call.
#include "dnnl_conv.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

extern "C" void omp_set_num_threads(int);

namespace hn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// The engine, stream and cached primitives are never destroyed: at process exit oneDNN's and
// OpenMP's own state may already be gone when static destructors run, and releasing a primitive
// then crashes the process.
dnnl::engine& eng() {
  static auto* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}

dnnl::stream& strm() {
  static auto* s = new dnnl::stream(eng());
  return *s;
}

/** One operand: the caller's layout, the primitive's, and when they differ a buffer and the reorder into or out of it. */
struct Operand {
  memory::desc user, prim;
  bool written = false;
  memory buffer;
  dnnl::reorder reorder;

  void init(const memory::desc& u, const memory::desc& p, bool out) {
    user = u;
    prim = p;
    written = out;
    if (user != prim) {
      buffer = memory(prim, eng());
      reorder = out ? dnnl::reorder(dnnl::reorder::primitive_desc(eng(), prim, eng(), user))
                    : dnnl::reorder(dnnl::reorder::primitive_desc(eng(), user, eng(), prim));
    }
  }
  bool direct() const { return user == prim; }
};

struct Entry {
  dnnl::primitive prim;
  int args[3];  // the oneDNN argument of x, w, y
  Operand ops[3];
  std::string impl;
};

std::mutex& lock() {
  static std::mutex m;
  return m;
}

std::map<std::vector<int64_t>, std::unique_ptr<Entry>>& cache() {
  static auto* c = new std::map<std::vector<int64_t>, std::unique_ptr<Entry>>();
  return *c;
}

Entry& entry(int kind, const ConvShape& s) {
  std::vector<int64_t> key{kind,        s.N,        s.H,       s.W,         s.C,         s.O,         s.OH,       s.OW,
                           s.KH,        s.KW,       s.strideH, s.strideW,   s.dilationH, s.dilationW, s.padTop,   s.padLeft,
                           s.padBottom, s.padRight};
  auto& c = cache();
  auto it = c.find(key);
  if (it != c.end()) return *it->second;

  const memory::desc x({s.N, s.C, s.H, s.W}, dt::f32, tag::nhwc);
  const memory::desc w({s.O, s.C, s.KH, s.KW}, dt::f32, tag::hwio);
  const memory::desc y({s.N, s.O, s.OH, s.OW}, dt::f32, tag::nhwc);
  const memory::desc wAny({s.O, s.C, s.KH, s.KW}, dt::f32, tag::any);
  const memory::dims strides{s.strideH, s.strideW}, dilation{s.dilationH - 1, s.dilationW - 1};
  const memory::dims padL{s.padTop, s.padLeft}, padR{s.padBottom, s.padRight};
  const auto algo = dnnl::algorithm::convolution_direct;

  dnnl::convolution_forward::primitive_desc fwd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, x, wAny, y, strides, dilation, padL, padR), eng());
  auto e = std::make_unique<Entry>();
  if (kind == kConvForward) {
    e->prim = dnnl::convolution_forward(fwd);
    e->args[0] = DNNL_ARG_SRC, e->args[1] = DNNL_ARG_WEIGHTS, e->args[2] = DNNL_ARG_DST;
    e->ops[0].init(x, fwd.src_desc(), false);
    e->ops[1].init(w, fwd.weights_desc(), false);
    e->ops[2].init(y, fwd.dst_desc(), true);
    e->impl = fwd.impl_info_str();
  } else if (kind == kConvBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(algo, x, wAny, y, strides, dilation, padL, padR), eng(), fwd);
    e->prim = dnnl::convolution_backward_data(pd);
    e->args[0] = DNNL_ARG_DIFF_SRC, e->args[1] = DNNL_ARG_WEIGHTS, e->args[2] = DNNL_ARG_DIFF_DST;
    e->ops[0].init(x, pd.diff_src_desc(), true);
    e->ops[1].init(w, pd.weights_desc(), false);
    e->ops[2].init(y, pd.diff_dst_desc(), false);
    e->impl = pd.impl_info_str();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        dnnl::convolution_backward_weights::desc(algo, x, wAny, y, strides, dilation, padL, padR), eng(), fwd);
    e->prim = dnnl::convolution_backward_weights(pd);
    e->args[0] = DNNL_ARG_SRC, e->args[1] = DNNL_ARG_DIFF_WEIGHTS, e->args[2] = DNNL_ARG_DIFF_DST;
    e->ops[0].init(x, pd.src_desc(), false);
    e->ops[1].init(w, pd.diff_weights_desc(), true);
    e->ops[2].init(y, pd.diff_dst_desc(), false);
    e->impl = pd.impl_info_str();
  }
  return *(c[key] = std::move(e));
}

}  // namespace

void dnnl_conv(int kind, const ConvShape& s, float* x, float* w, float* y) {
  // oneDNN 2.6's 1x1 backward-weights kernel with stride > 1 on NHWC input first copies the input
  // to unit stride ("rtus") into a per-thread scratchpad slot sized for is*ic floats, but a thread
  // that starts mid-image writes at an offset in ic_block (8 or 16) units: with fewer channels than
  // the block it writes past its slot, and the last thread past the scratchpad (a glibc heap
  // corruption seen with 2 threads). A 1x1 convolution without padding reads only every stride-th
  // pixel, so taking those pixels here and running it at unit stride is the same computation,
  // with no rtus copy inside oneDNN.
  if (kind == kConvBackwardWeights && s.KH == 1 && s.KW == 1 && (s.strideH > 1 || s.strideW > 1) && s.padTop == 0 &&
      s.padLeft == 0 && s.padBottom == 0 && s.padRight == 0) {
    std::vector<float> sub(static_cast<size_t>(s.N * s.OH * s.OW * s.C));
    float* out = sub.data();
    for (int64_t n = 0; n < s.N; n++)
      for (int64_t oh = 0; oh < s.OH; oh++)
        for (int64_t ow = 0; ow < s.OW; ow++, out += s.C) {
          const float* in = x + ((n * s.H + oh * s.strideH) * s.W + ow * s.strideW) * s.C;
          std::copy(in, in + s.C, out);
        }
    ConvShape unit = s;
    unit.H = s.OH, unit.W = s.OW, unit.strideH = 1, unit.strideW = 1;
    dnnl_conv(kind, unit, sub.data(), w, y);
    return;
  }
  std::lock_guard<std::mutex> guard(lock());
  Entry& e = entry(kind, s);
  float* ptrs[3] = {x, w, y};
  std::unordered_map<int, memory> args;
  memory user[3];
  for (int k = 0; k < 3; k++) {
    Operand& op = e.ops[k];
    user[k] = memory(op.user, eng(), ptrs[k]);
    if (op.direct()) {
      args.emplace(e.args[k], user[k]);
    } else {
      if (!op.written) op.reorder.execute(strm(), {{DNNL_ARG_FROM, user[k]}, {DNNL_ARG_TO, op.buffer}});
      args.emplace(e.args[k], op.buffer);
    }
  }
  e.prim.execute(strm(), args);
  for (int k = 0; k < 3; k++) {
    Operand& op = e.ops[k];
    if (op.written && !op.direct()) op.reorder.execute(strm(), {{DNNL_ARG_FROM, op.buffer}, {DNNL_ARG_TO, user[k]}});
  }
  strm().wait();
}

const char* dnnl_conv_impl(int kind, const ConvShape& s) {
  std::lock_guard<std::mutex> guard(lock());
  return entry(kind, s).impl.c_str();
}

void dnnl_set_threads(int n) { omp_set_num_threads(n); }

}  // namespace hn
