// The Toom-Cook layers' linear transforms (gan/models/upconv.py: kin, kin_t, pout, pout_t) as one
// XLA FFI custom call, one pass over memory each.
//
// Every transform maps tiles to tiles: the output is a grid of N x TH x TW tiles, each holding
// `slots` runs of C contiguous floats; output run s of tile (n, i, j) is a weighted sum of input
// runs of the same tile or of a neighbouring one (i +- 1, j +- 1). Python builds the tables (the
// 2-D products of the schemes' 1-D terms, with absolute offsets), one table per boundary class so
// the inner loop needs no bounds checks. XLA's own lowering of the same stack-of-slices code runs
// these at 5-25 GB/s on the DCGAN shapes; this kernel at 15-85 GB/s.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

struct Plan {
  const float* in;
  float* out;
  int64_t n, th, tw, c;
  int64_t in_sn, in_sth, in_stw, out_sn, out_sth, out_stw;
  int64_t slots;
  const int64_t* slot_out;
  // Term tables per boundary class (see ClassOf): start[cls * (slots + 1) + s] .. next entry.
  const int64_t* start;
  const float* coef;
  const int64_t* off;  // input offset relative to the output tile's own input tile
  // The distinct input runs of a tile (offsets from its base), prefetched one tile ahead.
  const int64_t* prefetch;
  int64_t n_prefetch;
};

// Channels per chunk: 4 vectors of 16 floats held in registers across a run's terms. Chunks of 32
// or 16 measured 1.2-1.6x slower on the Toom-4 shapes (more table reads per FMA).
constexpr int64_t kChunk = 64;

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

inline v16 Load(const float* p) { return *reinterpret_cast<const v16u*>(p); }
inline void Store(float* p, v16 v) { *reinterpret_cast<v16u*>(p) = v; }

// Terms reading outside the tile grid are dropped per class: row class (first?, last?) x column
// class (first?, last?), 16 classes, so the inner loop has no bounds checks.
inline int64_t ClassOf(int64_t i, int64_t n) { return (i == 0 ? 1 : 0) + (i == n - 1 ? 2 : 0); }

template <int V>
inline void Chunk(const float* base, float* o, const float* coef, const int64_t* off, int64_t k0,
                  int64_t k1) {
  v16 acc[V];
  for (int v = 0; v < V; ++v) acc[v] = v16{};
  for (int64_t k = k0; k < k1; ++k) {
    const float* src = base + off[k];
    const float cf = coef[k];
    for (int v = 0; v < V; ++v) acc[v] += cf * Load(src + 16 * v);
  }
  for (int v = 0; v < V; ++v) Store(o + 16 * v, acc[v]);
}

// The Toom-4 operands spread a tile over 25 planes, more concurrent streams than the hardware
// prefetchers follow; without this the kernel waits on DRAM (up to 2x slower on those shapes).
inline void Prefetch(const Plan& p, const float* base) {
  for (int64_t r = 0; r < p.n_prefetch; ++r)
    for (int64_t c = 0; c < p.c; c += 16) __builtin_prefetch(base + p.prefetch[r] + c);
}

void RunRow(const Plan& p, int64_t row) {
  const int64_t n = row / p.th, i = row % p.th;
  const int64_t row_cls = ClassOf(i, p.th);
  const float* row_base = p.in + n * p.in_sn + i * p.in_sth;
  Prefetch(p, row_base);
  for (int64_t j = 0; j < p.tw; ++j) {
    const int64_t cls = row_cls * 4 + ClassOf(j, p.tw);
    const int64_t* start = p.start + cls * (p.slots + 1);
    const float* base = row_base + j * p.in_stw;
    if (j + 1 < p.tw) Prefetch(p, base + p.in_stw);
    float* out_tile = p.out + n * p.out_sn + i * p.out_sth + j * p.out_stw;
    // Channel chunks outermost: a chunk's input runs are reused by all slots while still cached.
    int64_t c0 = 0;
    for (; c0 + kChunk <= p.c; c0 += kChunk)
      for (int64_t s = 0; s < p.slots; ++s)
        Chunk<kChunk / 16>(base + c0, out_tile + p.slot_out[s] + c0, p.coef, p.off, start[s],
                           start[s + 1]);
    for (; c0 + 16 <= p.c; c0 += 16)
      for (int64_t s = 0; s < p.slots; ++s)
        Chunk<1>(base + c0, out_tile + p.slot_out[s] + c0, p.coef, p.off, start[s],
                 start[s + 1]);
    for (; c0 < p.c; ++c0)
      for (int64_t s = 0; s < p.slots; ++s) {
        float acc = 0.0f;
        for (int64_t k = start[s]; k < start[s + 1]; ++k) acc += p.coef[k] * base[p.off[k] + c0];
        out_tile[p.slot_out[s] + c0] = acc;
      }
  }
}

// Rows are claimed from a shared counter by the caller and by helper tasks on XLA's intra-op
// pool; the caller waits only for rows a helper has already claimed, so it never waits on a
// task the pool has not started (no deadlock when the pool is busy).
struct Shared {
  Plan plan;
  int64_t rows;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
};

void Work(Shared& sh) {
  int64_t r;
  while ((r = sh.next.fetch_add(1)) < sh.rows) {
    RunRow(sh.plan, r);
    if (sh.done.fetch_add(1) + 1 == sh.rows) {
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.cv.notify_all();
    }
  }
}

ffi::Error TiledTransformImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                              ffi::ResultBuffer<ffi::F32> y, ffi::Span<const int64_t> geometry,
                              ffi::Span<const int64_t> slot_out, ffi::Span<const int64_t> start,
                              ffi::Span<const float> coef, ffi::Span<const int64_t> off,
                              ffi::Span<const int64_t> prefetch) {
  if (geometry.size() != 10) return ffi::Error::InvalidArgument("geometry needs 10 entries");
  if (start.size() != 16 * (slot_out.size() + 1))
    return ffi::Error::InvalidArgument("start needs 16 classes x (slots + 1) entries");
  auto sh = std::make_shared<Shared>();
  Plan& p = sh->plan;
  p.in = x.typed_data();
  p.out = y->typed_data();
  p.n = geometry[0]; p.th = geometry[1]; p.tw = geometry[2]; p.c = geometry[3];
  p.in_sn = geometry[4]; p.in_sth = geometry[5]; p.in_stw = geometry[6];
  p.out_sn = geometry[7]; p.out_sth = geometry[8]; p.out_stw = geometry[9];
  p.slots = static_cast<int64_t>(slot_out.size());
  p.slot_out = slot_out.begin();
  p.start = start.begin();
  p.coef = coef.begin();
  p.off = off.begin();
  p.prefetch = prefetch.begin();
  p.n_prefetch = static_cast<int64_t>(prefetch.size());
  sh->rows = p.n * p.th;
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), sh->rows) - 1;
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule([sh] { Work(*sh); });
  Work(*sh);
  std::unique_lock<std::mutex> lock(sh->mu);
  sh->cv.wait(lock, [&] { return sh->done.load() == sh->rows; });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(TiledTransform, TiledTransformImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<ffi::Span<const int64_t>>("geometry")
                                  .Attr<ffi::Span<const int64_t>>("slot_out")
                                  .Attr<ffi::Span<const int64_t>>("start")
                                  .Attr<ffi::Span<const float>>("coef")
                                  .Attr<ffi::Span<const int64_t>>("off")
                                  .Attr<ffi::Span<const int64_t>>("prefetch"));
