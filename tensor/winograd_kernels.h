// Winograd F(2x2,3x3) and F(4x4,3x3) convolution kernels (Lavin & Gray 2016); see winograd.h for the
// math. This file is compiled once per instruction set, by tensor/winograd_avx2.cpp and
// tensor/winograd_avx512.cpp (built with their own -march, see the Makefile), into the namespace
// dd::avx2 or dd::avx512 (DD_ISA, tensor/microkernel.h): the transforms are the same source, the
// per-position products run on that instruction set's register block of micro::gemm, and the
// compiler uses its vector registers (32 with AVX-512) for the transforms. Everything here has
// internal linkage and calls no inline library function that would be emitted out of line, so no
// code built for AVX-512 can be linked into ordinary callers (`make check-kernels` verifies it).
//
// Work is cut into chunks of tiles (whole images, or tile rows of one image at 28x28), each chunk
// run start to finish by one OpenMP thread (taken dynamically) so that its buffers stay in that
// core's L2:
//   pack   the chunk's input rows channels-last, P[img][Hp][Wp][Cp] (zero border, Cp = C rounded up
//          to 8), with 8x8 in-register transposes
//   V [T][alpha^2][Cp]   input tiles after B^T d B, 8 channels per AVX vector (tile-major: see
//                        tile_major() below)
//   M [T][alpha^2][Np]   M^T[xi] = V[xi] U[xi], one small product per transform position xi,
//                        by the 6x16 register-blocked kernel of tensor/microkernel.h (no sgemm
//                        packing or call overhead: U[xi] is at most 32 KB and stays in L1/L2)
//   y = A^T M A (+ bias), 8 output channels per vector, stored through 8x8 transposes
//   U [alpha^2][C][Np]   kernels after G g G^T, shared by all threads (Np = O rounded up to 16)
// The weight gradient packs and transforms gy the same way, Gt [T][alpha^2][Op] = A e A^T per
// tile, and accumulates dU[xi] += Gt[xi]^T V[xi] per group of chunks with the same 6x16 kernel
// (transposed A: a reduction over tiles).
// Transforms are written out as the sparse formulas of the 1-d matrices (applied to columns, then
// rows) with GCC vector extensions, so the zero entries of B^T, A^T and A cost nothing.
//
// The layouts follow the published designs of NNPACK and oneDNN (batched per-position GEMMs over
// tiles, blocked channels in vector lanes); the code is written here.
#pragma once

#include <omp.h>
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "tensor/kernels.h"
#include "tensor/microkernel.h"

#if !(defined(__AVX2__) && defined(__FMA__))
#error "tensor/winograd_kernels.h is built with AVX2 + FMA or AVX-512 (see the Makefile's kernel rules)"
#endif

namespace dd {
inline namespace DD_ISA {
namespace {


typedef float v8 __attribute__((vector_size(32)));

inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// 1-d transforms. bt: r = B^T d (alpha -> alpha); at: y = A^T x (alpha -> m); aa: r = A e (m -> alpha,
// the transpose of at, used by the weight gradient). Outputs are strided arrays of v8; the inputs of
// bt and at are read through a function of the index (in(i): element i), so that the first of the
// two 1-d passes loads straight from memory into registers (an array of 36 loaded vectors was
// kept on the stack: a copy through memory of every tile).
template <int m>
struct Wino;

// F(2,3): interpolation points 0, 1, -1, infinity.
template <>
struct Wino<2> {
  static constexpr int a = 4;
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  template <class In>
  static inline void bt(In d, v8* r, int rs) {
    const v8 d0 = d(0), d1 = d(1), d2 = d(2), d3 = d(3);
    r[0] = d0 - d2;
    r[rs] = d1 + d2;
    r[2 * rs] = d2 - d1;
    r[3 * rs] = d1 - d3;
  }
  template <class In>
  static inline void at(In x, v8* y, int ys) {
    const v8 x0 = x(0), x1 = x(1), x2 = x(2), x3 = x(3);
    y[0] = x0 + x1 + x2;
    y[ys] = x1 - x2 - x3;
  }
  static inline void aa(const v8* e, int s, v8* r, int rs) {
    const v8 e0 = e[0], e1 = e[s];
    r[0] = e0;
    r[rs] = e0 + e1;
    r[2 * rs] = e0 - e1;
    r[3 * rs] = -e1;
  }
};

// F(4,3): interpolation points 0, 1, -1, 2, -2, infinity (the matrices of Lavin & Gray, section 4.2).
template <>
struct Wino<4> {
  static constexpr int a = 6;
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  template <class In>
  static inline void bt(In d, v8* r, int rs) {
    const v8 d0 = d(0), d1 = d(1), d2 = d(2), d3 = d(3), d4 = d(4), d5 = d(5);
    r[0] = 4.0f * d0 - 5.0f * d2 + d4;
    r[rs] = (d3 + d4) - 4.0f * (d1 + d2);
    r[2 * rs] = (d4 - d3) + 4.0f * (d1 - d2);
    r[3 * rs] = (d4 - d2) + 2.0f * (d3 - d1);
    r[4 * rs] = (d4 - d2) - 2.0f * (d3 - d1);
    r[5 * rs] = 4.0f * d1 - 5.0f * d3 + d5;
  }
  template <class In>
  static inline void at(In x, v8* y, int ys) {
    const v8 x0 = x(0), x1 = x(1), x2 = x(2), x3 = x(3), x4 = x(4), x5 = x(5);
    const v8 p12 = x1 + x2, m12 = x1 - x2, p34 = x3 + x4, m34 = x3 - x4;
    y[0] = x0 + p12 + p34;
    y[ys] = m12 + 2.0f * m34;
    y[2 * ys] = p12 + 4.0f * p34;
    y[3 * ys] = m12 + 8.0f * m34 + x5;
  }
  static inline void aa(const v8* e, int s, v8* r, int rs) {
    const v8 e0 = e[0], e1 = e[s], e2 = e[2 * s], e3 = e[3 * s];
    const v8 p02 = e0 + e2, p13 = e1 + e3, q02 = e0 + 4.0f * e2, q13 = 2.0f * e1 + 8.0f * e3;
    r[0] = e0;
    r[rs] = p02 + p13;
    r[2 * rs] = p02 - p13;
    r[3 * rs] = q02 + q13;
    r[4 * rs] = q02 - q13;
    r[5 * rs] = e3;
  }
};

constexpr double Wino<2>::G[4][3];
constexpr double Wino<4>::G[6][3];

// Sizes shared by the three kernels for one geometry and tile size.
struct Plan {
  int m, a, aa;                 // tile, alpha = m + 2, alpha^2
  int64_t TY, TX, tpi;          // tiles per column, per row, per image
  int64_t nimg, rows, nsub;     // images per chunk; tile rows per chunk and chunks per image (when
                                // one image has more tiles than a chunk should, it is split by rows)
  int64_t nchunks, Tp;          // chunks, padded tiles per chunk
  int64_t Hp, Wp;               // zero-padded input plane (covers every tile's alpha x alpha window)
  int nth;                      // threads used
};

// One chunk: images n0 .. n0+nimg-1, tile rows ty0 .. ty1-1 of each, T tiles in (img, ty, tx) order.
struct Chunk {
  int64_t n0, nimg, ty0, ty1, T;
};

Chunk chunk_at(const Plan& p, int64_t N, int64_t ch) {
  Chunk c;
  const int64_t group = ch / p.nsub, sub = ch % p.nsub;
  c.n0 = group * p.nimg;
  c.nimg = std::min(p.nimg, N - c.n0);
  c.ty0 = sub * p.rows;
  c.ty1 = std::min(p.TY, c.ty0 + p.rows);
  c.T = c.nimg * (c.ty1 - c.ty0) * p.TX;
  return c;
}

// Chunks are whole images holding at least this many tiles (so one 28x28 image at F(4x4), 4 images
// of 7x7): V and M of a chunk (alpha^2 * Tp * (Cp + Np) floats) then stay in L2 between the input
// transform, the per-position products and the output transform. Measured with apps/bench --mode
// conv (DD_WINO_CHUNK overrides it, for tuning): 16..48 tiles best, 96..512 5..30 % slower.
int64_t chunk_tiles() {
  static const int64_t v = [] {
    const char* e = std::getenv("DD_WINO_CHUNK");
    return e ? std::max<int64_t>(1, std::atoll(e)) : int64_t(32);
  }();
  return v;
}

Plan make_plan(const Conv2dGeometry& g, int m) {
  Plan p;
  p.m = m;
  p.a = m + 2;
  p.aa = p.a * p.a;
  p.TY = (g.Ho + m - 1) / m;
  p.TX = (g.Wo + m - 1) / m;
  p.tpi = p.TY * p.TX;
  const int maxth = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t per_thread = (g.N + maxth - 1) / maxth;
  p.nimg = std::max<int64_t>(1, std::min<int64_t>((chunk_tiles() + p.tpi - 1) / p.tpi, per_thread));
  p.rows = p.TY;
  if (p.tpi > chunk_tiles()) p.rows = std::max<int64_t>(1, std::min(p.TY, (chunk_tiles() + p.TX - 1) / p.TX));
  p.nsub = (p.TY + p.rows - 1) / p.rows;
  p.nchunks = (g.N + p.nimg - 1) / p.nimg * p.nsub;
  p.Tp = (p.nimg * p.rows * p.TX + 7) / 8 * 8;
  p.Hp = p.TY * m + 2;
  p.Wp = p.TX * m + 2;
  p.nth = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(maxth, p.nchunks)));
  return p;
}

// Kernels in the Winograd domain, laid out for the forward GEMM M^T[xi] = V[xi] U[xi]:
// U[xi][k][n] (k < K = the convolution's input channels, n < Np = its output channels rounded up
// to 16, zero padded) = (G w G^T)[xi] for w = w[n,k] (swap = false), or for the input gradient
// w = w[k,n] rotated by 180 degrees (swap = true: the transposed convolution of gy, K = O, N = C).
// Eight consecutive n at a time in the lanes of a vector, in float (it was double and scalar, 5 %
// of a training step: it runs for every forward and input-gradient call).
// Called by every thread of the convolution's parallel region (an orphaned `omp for`: one region per
// convolution call instead of two; outside a region it runs on the calling thread); the loop's
// implicit barrier makes U complete before any thread goes on.
template <int m>
void transform_weights(const Conv2dGeometry& g, const float* w, bool swap, int64_t Np, float* U) {
  constexpr int a = Wino<m>::a;
  const int64_t K = swap ? g.O : g.C, N = swap ? g.C : g.O;
  float G[a][3];
  for (int i = 0; i < a; ++i)
    for (int q = 0; q < 3; ++q) G[i][q] = static_cast<float>(Wino<m>::G[i][q]);
#pragma omp for schedule(static)
  for (int64_t kr = 0; kr < K; ++kr) {
    for (int64_t n0 = 0; n0 < Np; n0 += 8) {
      v8 kk[3][3];  // lane l: the kernel of n = n0 + l (zero for n >= N)
      for (int p = 0; p < 3; ++p)
        for (int q = 0; q < 3; ++q) {
          float lanes[8];
          for (int l = 0; l < 8; ++l) {
            const int64_t n = n0 + l;
            if (n >= N) {
              lanes[l] = 0.0f;
              continue;
            }
            const int64_t o = swap ? kr : n, c = swap ? n : kr;
            const float* k = w + (o * g.C + c) * 9;
            lanes[l] = swap ? k[(2 - p) * 3 + (2 - q)] : k[p * 3 + q];
          }
          kk[p][q] = load8(lanes);
        }
      v8 t[a][3];  // G k
      for (int i = 0; i < a; ++i)
        for (int q = 0; q < 3; ++q) t[i][q] = G[i][0] * kk[0][q] + G[i][1] * kk[1][q] + G[i][2] * kk[2][q];
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j)
          store8(U + ((i * a + j) * K + kr) * Np + n0, t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
    }
  }
}

inline int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

// V, M and Gt are stored tile-major, X[t][xi][ch] (channel count rounded to cp): each tile's
// alpha^2 x cp block is contiguous, so the transforms read and write one compact block per tile
// (position-major X[xi][t][ch] spreads a tile over alpha^2 planes; measured slower), while each
// per-position product still sees a plain row-major operand with row stride alpha^2 * cp.
struct Strides {
  int64_t pos, tile;  // floats between transform positions, between tiles
};
// The tile stride is padded by one cache line: with aa * cp floats alone it is a multiple of 1 KiB
// for the common channel counts (36 * 64 * 4 B = 9 KiB), so the rows of one position's product all
// fall into a quarter of L1's sets and evict each other (cachegrind on the 64->64 @28 convolution,
// forward and both gradients: D1 read misses 16.6M without the padding, 9.0M with it).
inline int64_t tile_stride(int aa, int64_t cp) { return aa * cp + 16; }
inline Strides tile_major(int aa, int64_t cp) { return {cp, tile_stride(aa, cp)}; }

// Offset of tile t (of a chunk) inside a stack of padded planes of size ph x pw.
inline int64_t tile_offset(const Plan& p, int64_t t, int64_t ph, int64_t pw) {
  const int64_t img = t / p.tpi, r = t % p.tpi, ty = r / p.TX, tx = r % p.TX;
  return img * ph * pw + ty * p.m * pw + tx * p.m;
}

#if defined(__AVX2__)
// In-register transpose of 8 vectors (8x8 floats): r[k][l] -> r[l][k].
inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                       __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
  r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
  r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
  r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
  r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
  r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
  r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
  r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

// One image src [C][H][W] -> channel-innermost dst[(r + pad) * Wp + col + pad][c] (pixel stride Cp),
// 8 channels x 8 columns at a time through an in-register transpose; the last 1-7 columns of a row
// the same way from masked loads (at 28, 14 and 7 pixels a row ends in 4, 6 or 7 of them: as scalar
// copies they took half the packing time). Only input rows r0 .. r1-1 (clamped to the image) are
// packed; entries outside the image (the zero border) and lanes c >= C are not written.
void pack_channels_last(const float* src, int64_t C, int64_t H, int64_t W, float* dst, int64_t Cp, int64_t Wp,
                        int64_t pad, int64_t r0, int64_t r1) {
  r0 = std::max<int64_t>(r0, 0);
  r1 = std::min(r1, H);
  const int64_t cs = H * W;
  for (int64_t cb = 0; cb < C; cb += 8) {
    const int64_t nc = std::min<int64_t>(8, C - cb);
    for (int64_t r = r0; r < r1; ++r) {
      float* d = dst + ((r + pad) * Wp + pad) * Cp + cb;
      const float* s0 = src + (cb * H + r) * W;
      if (nc < 8) {
        for (int64_t l = 0; l < nc; ++l)
          for (int64_t cc = 0; cc < W; ++cc) d[cc * Cp + l] = s0[l * cs + cc];
        continue;
      }
      for (int64_t col = 0; col < W; col += 8) {
        const int64_t w = std::min<int64_t>(8, W - col);
        __m256 q[8];
        if (w == 8) {
          for (int l = 0; l < 8; ++l) q[l] = _mm256_loadu_ps(s0 + l * cs + col);
        } else {
          const __m256i lanes =
              _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(w)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
          for (int l = 0; l < 8; ++l) q[l] = _mm256_maskload_ps(s0 + l * cs + col, lanes);
        }
        transpose8(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]);
        float* dc = d + col * Cp;
        for (int64_t j = 0; j < w; ++j) _mm256_storeu_ps(dc + j * Cp, q[j]);
      }
    }
  }
}

// V[xi][t][c] = (B^T d B)[xi] for the tiles of images n0 .. n0+nimg-1 of x [N,C,H,W].
// Channels go into the 8 vector lanes (as oneDNN's and ncnn's blocked layouts do): the chunk is
// first packed channel-innermost into zero-bordered planes P[img][Hp][Wp][Cp], so that every element
// of a tile is one contiguous 8-float load (no scalar gathers), and the tiles are then transformed
// one after the other with all their channels, so each tile's output rows V[xi][t][0..Cp) are
// written whole (full cache lines, not 8-float pieces of lines spread over the chunk).
// P: nimg * Hp * Wp * Cp floats whose border the caller zeroed (only the interior is written here,
// so the border stays zero across chunks; lanes >= C stay zero and are never read by the GEMMs).
template <int m>
void input_transform(const Plan& p, const Chunk& ck, const float* x, int64_t C, int64_t H, int64_t W, int64_t pad,
                     int64_t Cp, float* P, float* V) {
  constexpr int a = Wino<m>::a, aa = a * a;
  const int64_t Wp = p.Wp, plane = p.Hp * Wp;
  // padded rows ty0*m .. ty1*m + 1 are read: input rows (those) - pad
  for (int64_t img = 0; img < ck.nimg; ++img)
    pack_channels_last(x + img * C * H * W, C, H, W, P + img * plane * Cp, Cp, Wp, pad, ck.ty0 * m - pad,
                       ck.ty1 * m + 2 - pad);
  v8 d[aa], t[aa];
  int64_t t_idx = 0;
  for (int64_t img = 0; img < ck.nimg; ++img)
    for (int64_t ty = ck.ty0; ty < ck.ty1; ++ty)
      for (int64_t tx = 0; tx < p.TX; ++tx, ++t_idx)
        for (int64_t cb = 0; cb < C; cb += 8) {
          const float* base = P + (img * plane + ty * m * Wp + tx * m) * Cp + cb;
          for (int j = 0; j < a; ++j)  // columns: B^T d
            Wino<m>::bt([&](int i) { return load8(base + (i * Wp + j) * Cp); }, t + j, a);
          for (int i = 0; i < a; ++i)  // rows: (B^T d) B
            Wino<m>::bt([&](int j) { return t[i * a + j]; }, d + i * a, 1);
          const Strides sv = tile_major(aa, Cp);
          float* out = V + t_idx * sv.tile + cb;
          for (int k = 0; k < aa; ++k) store8(out + k * sv.pos, d[k]);
        }
}

// y[n0+img, o] tiles = ((A^T M[.][t][o] A + b[o]) + ibias[img, o]) + res[img, o, tile], cropped to
// Ho x Wo. b [Np] and ibias [nimg][Np] are zero-padded to whole vectors (see pad_biases); b, ibias,
// res may be nullptr; ibias and res start at the chunk's first image, as y does.
// M = M^T [aa][Tp][Np], 8 output channels per vector.
template <int m>
void output_transform(const Plan& p, const Chunk& ck, const float* M, int64_t O, int64_t Np, int64_t Ho, int64_t Wo,
                      const float* b, const float* ibias, const float* res, float* y) {
  constexpr int a = Wino<m>::a, aa = a * a;
  alignas(32) float buf[m * m * 8];
  v8 t[m * a], r[m * m];
  int64_t t_idx = 0;
  for (int64_t img = 0; img < ck.nimg; ++img)
    for (int64_t ty = ck.ty0; ty < ck.ty1; ++ty)
      for (int64_t tx = 0; tx < p.TX; ++tx, ++t_idx) {
        const int64_t i1 = std::min<int64_t>(m, Ho - ty * m), j1 = std::min<int64_t>(m, Wo - tx * m);
        for (int64_t ob = 0; ob < O; ob += 8) {
          const Strides sm = tile_major(aa, Np);
          const float* in = M + t_idx * sm.tile + ob;
          for (int j = 0; j < a; ++j)  // columns: A^T M  (m x a)
            Wino<m>::at([&](int i) { return load8(in + (i * a + j) * sm.pos); }, t + j, a);
          for (int i = 0; i < m; ++i)  // rows: (A^T M) A
            Wino<m>::at([&](int j) { return t[i * a + j]; }, r + i * m, 1);
          const int64_t nl = std::min<int64_t>(8, O - ob);
          // the bias, then the per-image bias, as separate adds: the same rounding as adding them
          // in two separate ops after the convolution
          for (const float* bias : {b, ibias ? ibias + img * Np : nullptr}) {
            if (!bias) continue;
            const v8 bv = load8(bias + ob);
            for (int k = 0; k < m * m; ++k) r[k] += bv;
          }
#if defined(__AVX2__)
          if (m == 4 && nl == 8) {
            // 4x4 tiles of 8 channels: two 8x8 transposes turn the 16 channel vectors into, per
            // channel, rows (0,1) and (2,3) of its tile, stored as 4-float row pieces (masked to the
            // j1 columns and i1 rows inside the output at the right and bottom edges).
            const int64_t at = (img * O + ob) * Ho * Wo + ty * m * Wo + tx * m;
            float* out = y + at;
            const float* rin = res ? res + at : nullptr;
            const __m128i cols = _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(j1)), _mm_setr_epi32(0, 1, 2, 3));
            for (int half = 0; half < 2 && 2 * half < i1; ++half) {
              __m256 q[8];
              for (int k = 0; k < 8; ++k) std::memcpy(&q[k], &r[half * 8 + k], sizeof(__m256));
              transpose8(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]);
              const bool second = 2 * half + 1 < i1;
              for (int l = 0; l < 8; ++l) {
                const int64_t off = l * Ho * Wo + half * 2 * Wo;
                float* o = out + off;
                __m128 lo = _mm256_castps256_ps128(q[l]), hi = _mm256_extractf128_ps(q[l], 1);
                if (j1 == 4) {
                  if (rin) {
                    lo = _mm_add_ps(lo, _mm_loadu_ps(rin + off));
                    if (second) hi = _mm_add_ps(hi, _mm_loadu_ps(rin + off + Wo));
                  }
                  _mm_storeu_ps(o, lo);
                  if (second) _mm_storeu_ps(o + Wo, hi);
                } else {
                  if (rin) {
                    lo = _mm_add_ps(lo, _mm_maskload_ps(rin + off, cols));
                    if (second) hi = _mm_add_ps(hi, _mm_maskload_ps(rin + off + Wo, cols));
                  }
                  _mm_maskstore_ps(o, cols, lo);
                  if (second) _mm_maskstore_ps(o + Wo, cols, hi);
                }
              }
            }
            continue;
          }
#endif
          for (int k = 0; k < m * m; ++k) store8(buf + k * 8, r[k]);
          for (int64_t l = 0; l < nl; ++l) {
            const int64_t at = (img * O + ob + l) * Ho * Wo + ty * m * Wo + tx * m;
            float* out = y + at;
            for (int64_t i = 0; i < i1; ++i)
              for (int64_t j = 0; j < j1; ++j)
                out[i * Wo + j] = res ? buf[(i * m + j) * 8 + l] + res[at + i * Wo + j] : buf[(i * m + j) * 8 + l];
          }
        }
      }
}

// Gt[xi][t][o] = (A e A^T)[xi], e = the m x m tile of gy[n0+img, o] (zero beyond Ho x Wo), 8 output
// channels per vector, packed and traversed tile by tile as in input_transform: Q holds nimg planes
// [TY m][TX m][Op] whose zero border (beyond Ho x Wo) the caller set.
template <int m>
void grad_transform(const Plan& p, const Chunk& ck, const float* gy, int64_t O, int64_t Ho, int64_t Wo, int64_t Op,
                    float* Q, float* Gt) {
  constexpr int a = Wino<m>::a, aa = a * a;
  const int64_t Wq = p.TX * m, plane = p.TY * m * Wq;
  for (int64_t img = 0; img < ck.nimg; ++img)
    pack_channels_last(gy + img * O * Ho * Wo, O, Ho, Wo, Q + img * plane * Op, Op, Wq, 0, ck.ty0 * m, ck.ty1 * m);
  v8 e[m * m], t[a * m], r[aa];
  int64_t t_idx = 0;
  for (int64_t img = 0; img < ck.nimg; ++img)
    for (int64_t ty = ck.ty0; ty < ck.ty1; ++ty)
      for (int64_t tx = 0; tx < p.TX; ++tx, ++t_idx)
        for (int64_t ob = 0; ob < O; ob += 8) {
          const float* base = Q + (img * plane + ty * m * Wq + tx * m) * Op + ob;
          for (int i = 0; i < m; ++i)
            for (int j = 0; j < m; ++j) e[i * m + j] = load8(base + (i * Wq + j) * Op);
          for (int j = 0; j < m; ++j) Wino<m>::aa(e + j, m, t + j, m);          // columns: A e   (a x m)
          for (int i = 0; i < a; ++i) Wino<m>::aa(t + i * m, 1, r + i * a, 1);  // rows: (A e) A^T
          const Strides sg = tile_major(aa, Op);
          float* out = Gt + t_idx * sg.tile + ob;
          for (int k = 0; k < aa; ++k) store8(out + k * sg.pos, r[k]);
        }
}

inline int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

// y = conv(x, kernels transformed into U [aa][C][Np] by make_U() inside the parallel region) + b,
// + ibias, + residual (b [Np] and ibias [N][Np] padded by pad_biases; any may be nullptr); g is the
// geometry of this convolution.
template <int m, class MakeU>
void forward_with_U(const Conv2dGeometry& g, const Plan& p, const float* x, MakeU&& make_U, const float* U,
                    const float* b, const float* ibias, const float* residual, float* y, float* scratch) {
  const int64_t Cp = round8(g.C), Np = round16(g.O);
  const int64_t planes_sz = p.nimg * p.Hp * p.Wp * Cp, V_sz = tile_stride(p.aa, Cp) * p.Tp, M_sz = tile_stride(p.aa, Np) * p.Tp;
  const int64_t per_thread = planes_sz + V_sz + M_sz;
#pragma omp parallel num_threads(p.nth) if (p.nth > 1)
  {
    const int th = omp_get_thread_num();
    float* planes = scratch + th * per_thread;
    float* V = planes + planes_sz;
    float* M = V + V_sz;
    make_U();
    // Only the planes' zero border matters: V rows beyond the last tile and lanes >= C only feed
    // M entries the output transform never reads.
    std::fill(planes, planes + planes_sz, 0.0f);
    // Chunks are handed out one at a time (dynamic): on this shared VM one core is often slowed for
    // a while by other tenants, and a static split would make every convolution wait for it.
#pragma omp for schedule(dynamic, 1)
    for (int64_t ch = 0; ch < p.nchunks; ++ch) {
      const Chunk ck = chunk_at(p, g.N, ch);
      const int64_t n0 = ck.n0, T = ck.T;
      input_transform<m>(p, ck, x + n0 * g.C * g.H * g.W, g.C, g.H, g.W, g.pad, Cp, planes, V);
      // M^T[xi] [T x Np] = V[xi] [T x C] U[xi] [C x Np]
      for (int xi = 0; xi < p.aa; ++xi)
        micro::gemm(false, false, T, Np, g.C, V + xi * Cp, tile_stride(p.aa, Cp), U + xi * g.C * Np, Np, M + xi * Np,
                    tile_stride(p.aa, Np));
      const int64_t y0 = n0 * g.O * g.Ho * g.Wo;
      output_transform<m>(p, ck, M, g.O, Np, g.Ho, g.Wo, b, ibias ? ibias + n0 * Np : nullptr,
                          residual ? residual + y0 : nullptr, y + y0);
    }
  }
}

template <int m>
int64_t forward_scratch(const Conv2dGeometry& g, const Plan& p) {
  return p.nth * (p.nimg * p.Hp * p.Wp * round8(g.C) + (tile_stride(p.aa, round8(g.C)) + tile_stride(p.aa, round16(g.O))) * p.Tp);
}

// The bias b [O] and the per-image bias [N][O] copied into rows of Np floats, zero beyond O, so that
// the output transform loads them as whole vectors (once per call instead of a gather per tile).
// Returns the padded bias and per-image bias (nullptr where the input is) inside buf, which holds
// pad_biases_size floats.
struct PaddedBiases {
  const float* bias;
  const float* image_bias;
};
int64_t pad_biases_size(const Conv2dGeometry& g, const float* b, const ConvAddend<float>& add) {
  const int64_t Np = round16(g.O);
  return (b ? Np : 0) + (add.image_bias ? g.N * Np : 0);
}
PaddedBiases pad_biases(const Conv2dGeometry& g, const float* b, const ConvAddend<float>& add,
                                                 float* buf) {
  const int64_t Np = round16(g.O);
  auto pad_rows = [&](const float* src, int64_t rows, float* dst) {
    for (int64_t r = 0; r < rows; ++r) {
      std::copy(src + r * g.O, src + (r + 1) * g.O, dst + r * Np);
      std::fill(dst + r * Np + g.O, dst + (r + 1) * Np, 0.0f);
    }
    return dst;
  };
  const float* bp = b ? pad_rows(b, 1, buf) : nullptr;
  const float* ip = add.image_bias ? pad_rows(add.image_bias, g.N, buf + (b ? Np : 0)) : nullptr;
  return {bp, ip};
}

template <int m>
void forward_impl(const Conv2dGeometry& g, const float* x, const float* w, const float* b, float* y,
                  Workspace<float>& ws, const ConvAddend<float>& add) {
  const Plan p = make_plan(g, m);
  const int64_t U_sz = p.aa * g.C * round16(g.O), bias_sz = pad_biases_size(g, b, add);
  float* U = workspace_floats(ws, static_cast<size_t>(U_sz + bias_sz + forward_scratch<m>(g, p)));
  const PaddedBiases pb = pad_biases(g, b, add, U + U_sz);
  const float *bias = pb.bias, *ibias = pb.image_bias;
  forward_with_U<m>(g, p, x, [&] { transform_weights<m>(g, w, false, round16(g.O), U); }, U, bias, ibias,
                    add.residual, y, U + U_sz + bias_sz);
}

// dx = conv(gy, rot180(w) with O and C swapped), padding 2 - pad: its geometry has the roles of
// (C, H, W) and (O, Ho, Wo) exchanged.
template <int m>
void backward_input_impl(const Conv2dGeometry& g, const float* gy, const float* w, float* dx, Workspace<float>& ws) {
  Conv2dGeometry t = g;
  t.C = g.O;
  t.H = g.Ho;
  t.W = g.Wo;
  t.O = g.C;
  t.Ho = g.H;
  t.Wo = g.W;
  t.pad = 2 - g.pad;
  const Plan p = make_plan(t, m);
  const int64_t U_sz = p.aa * t.C * round16(t.O);
  float* U = workspace_floats(ws, static_cast<size_t>(U_sz + forward_scratch<m>(t, p)));
  forward_with_U<m>(t, p, gy, [&] { transform_weights<m>(g, w, true, round16(t.O), U); }, U, nullptr, nullptr,
                    nullptr, dx, U + U_sz);
}

// dU[xi] = sum over tiles of Gt[xi]^T V[xi] (per group of chunks, then summed in group order so
// that a fixed thread count gives bit-identical results), dw[o,c] = G^T dU[.][o][c] G.
// V is stored with C rounded up to 16 (lanes >= C stay zero) so the kernel's 16 columns fit.
template <int m>
void backward_weight_impl(const Conv2dGeometry& g, const float* gy, const float* x, float* dw, Workspace<float>& ws) {
  constexpr int a = Wino<m>::a;
  const Plan p = make_plan(g, m);
  const int64_t Cp = round16(g.C), O6 = (g.O + 5) / 6 * 6, Op = round8(O6);
  const int64_t dU_sz = p.aa * O6 * Cp;
  const int64_t planes_sz = p.nimg * p.Hp * p.Wp * Cp, gplanes_sz = p.nimg * p.TY * m * p.TX * m * Op;
  const int64_t V_sz = tile_stride(p.aa, Cp) * p.Tp, G_sz = tile_stride(p.aa, Op) * p.Tp;
  const int64_t per_thread = planes_sz + gplanes_sz + V_sz + G_sz;
  // The chunks are cut into consecutive groups, each with its own accumulator dU; each group sums
  // its chunks in order and the groups are added in group order.
  // Groups per thread: more of them let a fast core take over work from a slowed one, but each
  // costs zeroing and summing one more dU (measured: 4 per thread lost more than it won).
  // DD_WINO_GROUPS overrides it, for tuning.
  static const int64_t groups_per_thread = [] {
    const char* e = std::getenv("DD_WINO_GROUPS");
    return e ? std::max<int64_t>(1, std::atoll(e)) : int64_t(1);
  }();
  const int64_t ngroups = std::min<int64_t>(p.nchunks, p.nth * groups_per_thread);
  float* scratch = workspace_floats(ws, static_cast<size_t>(p.nth * per_thread + ngroups * dU_sz));
  float* dU_groups = scratch + p.nth * per_thread;
#pragma omp parallel num_threads(p.nth) if (p.nth > 1)
  {
    const int th = omp_get_thread_num();
    float* planes = scratch + th * per_thread;
    float* gplanes = planes + planes_sz;
    float* V = gplanes + gplanes_sz;
    float* Gt = V + V_sz;
    // Zero the planes' borders and each group's accumulator dU. V lanes >= C and Gt lanes >= O may
    // hold anything: they only reach dU entries (c >= C, o >= O) that are never read.
    std::fill(planes, planes + planes_sz + gplanes_sz, 0.0f);
#pragma omp for schedule(dynamic, 1)
    for (int64_t grp = 0; grp < ngroups; ++grp) {
      float* dU = dU_groups + grp * dU_sz;
      std::fill(dU, dU + dU_sz, 0.0f);
      for (int64_t ch = p.nchunks * grp / ngroups; ch < p.nchunks * (grp + 1) / ngroups; ++ch) {
        const Chunk ck = chunk_at(p, g.N, ch);
        const int64_t n0 = ck.n0, T = ck.T;
        input_transform<m>(p, ck, x + n0 * g.C * g.H * g.W, g.C, g.H, g.W, g.pad, Cp, planes, V);
        grad_transform<m>(p, ck, gy + n0 * g.O * g.Ho * g.Wo, g.O, g.Ho, g.Wo, Op, gplanes, Gt);
        for (int xi = 0; xi < p.aa; ++xi)
          // dU[xi] [O6 x Cp] += Gt[xi]^T [O6 x T] V[xi] [T x Cp]
          micro::gemm(true, true, O6, Cp, T, Gt + xi * Op, tile_stride(p.aa, Op), V + xi * Cp, tile_stride(p.aa, Cp),
                      dU + xi * O6 * Cp, Cp);
      }
    }
    // (the loop's implicit barrier: every group is complete) Sum the groups' dU in group order
    // and map back: dw[o,c] = G^T dU G.
#pragma omp for schedule(static)
    for (int64_t oc = 0; oc < g.O * g.C; ++oc) {
      const int64_t o = oc / g.C, c = oc % g.C;
      double u[a * a];
      for (int k = 0; k < a * a; ++k) {
        const int64_t idx = (k * O6 + o) * Cp + c;
        float s = dU_groups[idx];
        for (int64_t grp = 1; grp < ngroups; ++grp) s += dU_groups[grp * dU_sz + idx];
        u[k] = s;
      }
      double t[3][a];  // G^T dU
      for (int pp = 0; pp < 3; ++pp)
        for (int j = 0; j < a; ++j) {
          double s = 0;
          for (int i = 0; i < a; ++i) s += Wino<m>::G[i][pp] * u[i * a + j];
          t[pp][j] = s;
        }
      for (int pp = 0; pp < 3; ++pp)
        for (int q = 0; q < 3; ++q) {
          double s = 0;
          for (int j = 0; j < a; ++j) s += t[pp][j] * Wino<m>::G[j][q];
          dw[oc * 9 + pp * 3 + q] = static_cast<float>(s);
        }
    }
  }
}


// ---- entry points of the kernel table (tile is 2 or 4, checked by tensor/winograd.cpp) ----
void table_small_gemm(bool trans_a, bool accumulate, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float* C, int64_t ldc) {
  micro::panel_gemm(trans_a, accumulate, M, N, K, A, lda, B, ldb, C, ldc);
}
// dst [cols x rows] = src [rows x cols]^T, 8 x 8 blocks through the in-register transpose.
void table_transpose(int64_t rows, int64_t cols, const float* src, float* dst) {
  int64_t r0 = 0;
  for (; r0 + 8 <= rows; r0 += 8) {
    const float* s = src + r0 * cols;
    int64_t c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) {
      __m256 q0 = _mm256_loadu_ps(s + c0), q1 = _mm256_loadu_ps(s + cols + c0), q2 = _mm256_loadu_ps(s + 2 * cols + c0),
             q3 = _mm256_loadu_ps(s + 3 * cols + c0), q4 = _mm256_loadu_ps(s + 4 * cols + c0),
             q5 = _mm256_loadu_ps(s + 5 * cols + c0), q6 = _mm256_loadu_ps(s + 6 * cols + c0),
             q7 = _mm256_loadu_ps(s + 7 * cols + c0);
      transpose8(q0, q1, q2, q3, q4, q5, q6, q7);
      float* d = dst + c0 * rows + r0;
      _mm256_storeu_ps(d, q0);
      _mm256_storeu_ps(d + rows, q1);
      _mm256_storeu_ps(d + 2 * rows, q2);
      _mm256_storeu_ps(d + 3 * rows, q3);
      _mm256_storeu_ps(d + 4 * rows, q4);
      _mm256_storeu_ps(d + 5 * rows, q5);
      _mm256_storeu_ps(d + 6 * rows, q6);
      _mm256_storeu_ps(d + 7 * rows, q7);
    }
    for (int64_t c = c0; c < cols; ++c)
      for (int64_t r = r0; r < r0 + 8; ++r) dst[c * rows + r] = src[r * cols + c];
  }
  for (int64_t r = r0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
}
void table_forward(const Conv2dGeometry& g, int tile, const float* x, const float* w, const float* b,
                   const float* image_bias, const float* residual, float* y, Workspace<float>& ws) {
  ConvAddend<float> add;
  add.image_bias = image_bias;
  add.residual = residual;
  if (tile == 4)
    forward_impl<4>(g, x, w, b, y, ws, add);
  else
    forward_impl<2>(g, x, w, b, y, ws, add);
}
void table_backward_input(const Conv2dGeometry& g, int tile, const float* gy, const float* w, float* dx,
                          Workspace<float>& ws) {
  if (tile == 4)
    backward_input_impl<4>(g, gy, w, dx, ws);
  else
    backward_input_impl<2>(g, gy, w, dx, ws);
}
void table_backward_weight(const Conv2dGeometry& g, int tile, const float* gy, const float* x, float* dw,
                           Workspace<float>& ws) {
  if (tile == 4)
    backward_weight_impl<4>(g, gy, x, dw, ws);
  else
    backward_weight_impl<2>(g, gy, x, dw, ws);
}

}  // namespace
}  // namespace DD_ISA
}  // namespace dd

// Defines the kernel table NAME of this instruction set (one use, in its kernel file).
#define DD_DEFINE_KERNEL_TABLE(NAME, PATH)                                                               \
  namespace dd {                                                                                         \
  extern const KernelTable NAME;                                                                         \
  const KernelTable NAME = {PATH,           &table_small_gemm,     &table_transpose,                       \
                            &table_forward, &table_backward_input, &table_backward_weight};              \
  }
