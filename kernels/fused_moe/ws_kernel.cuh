// The warp-specialized Hopper grouped-GEMM core of the fused MoE layers
// (wgmma_ws tiles, sm_90a), written once for the 16-bit layer (fused_moe) and the
// 8-bit one (fused_moe_q8): an operand policy `Op` supplies what differs (the
// wgmma of one K slice, the accumulator type, the scales, the 16-bit store).
// Tiles, tile order, epilogues and results are those of the older tile kernels.
//
//   warpgroup 0 (producer, 56 registers): per K slice (128 bytes of every row:
//     64 bf16 or 128 8-bit codes), waits for a free slot of the STAGES-deep
//     shared-memory ring (empty barrier), has one thread start the weight tile's
//     bulk tensor copy (TMA, 128-byte swizzle; stage 1: a gate box and an up box of
//     block_n/2 rows each), and gathers the block_m token rows named by
//     sorted_token_ids with 16-byte cp.async into the same swizzled layout; the
//     slot's full barrier completes when the TMA bytes have landed and every
//     producer thread's copies have (cp.async.mbarrier.arrive). With per-slice scales
//     (Op::kSliceScales, the 8-bit block scheme) the producer copies the slice's A-row
//     and weight-block scales into the slot as well, so the MMA warps read them from
//     shared memory while the slice's MMAs run instead of from L2 after them.
//   warpgroups 1..block_m/64 (MMA, the other registers: 224 each at block_m 128):
//     warpgroup c multiplies rows 64(c-1).. of the tile with all block_n columns
//     (fp32 or int32 accumulators), skipping the MMAs where all 64 rows are padding,
//     frees each slot once the next slice's MMAs are issued (wgmma wait 1; lane 0
//     of each warp arrives on the slot's empty barrier), then runs the epilogue
//     while the producer already fills the ring for the next tile.
//   Op::kPromote (fp8): after every slice the wgmma accumulator is added into fp32
//     registers (times the slice's block scales in the block scheme) and the next
//     slice starts it afresh (scale-d 0), so no fp8 accumulation chain is longer than
//     128 of K (Hopper's fp8 wgmma keeps 13 fraction bits:
//     reference/fused_moe_q8/fp8_mma_accum.hpp).
//
// Both roles walk the same tile sequence with one running slice counter each, so
// slot = counter % STAGES and the barrier parity = (counter / STAGES) & 1 agree. The
// sequence is blockIdx.x, += gridDim.x (one tile per block, or a persistent grid
// without p.tile_counter), or, on a persistent one-block grid with p.tile_counter:
// blockIdx.x first, then tile gridDim.x + atomicAdd(tile_counter, 1) each round, so
// the tiles in flight stay one contiguous window of the grouped order however the
// blocks' speeds differ (with the fixed stride, slower SMs fall rounds behind and the
// window widens: the one-block tile on a persistent grid read ~1.8x the DRAM bytes of
// one block per tile). Producer thread 0 claims each next tile one round ahead (the
// atomic's latency hides behind the current tile) and passes it to the MMA warps
// through a 2-deep shared ring (tile_full / tile_empty barriers) and to the other
// producer threads through a named barrier. Every block makes exactly one claim past
// the end, so the claim that returns max(total, gridDim) - 1 is the launch's last:
// that block sets the counter back to 0 for the next launch (stream order, or the
// next kernel's griddepcontrol.wait, orders the reset before it).
//
// CLUSTER 2 (blocks 2i and 2i+1 a cluster): the pair walks the tile pairs (2j, 2j+1),
// block rank r taking tile 2j + r, on a persistent grid or one pair per cluster. When
// both tiles of a pair are the same expert, n-tile and K range (two neighbouring
// m-blocks of the grouped order), each block's producer loads one of the two weight
// boxes of every slice and multicasts it into both blocks' slot, so each block reads
// half the weight bytes from L2; other pairs load alone. The two rings stay in step
// over every pair: a slot may be refilled only when the MMA warps of both blocks are
// done with it (every MMA warp arrives on its own block's empty barrier and on the
// partner's, which count twice the arrivals), and a block whose tile has fewer K slices
// than its partner's (or none) passes the difference as empty slices (no copies, the
// same arrivals). Before exiting each producer waits until its ring's last slots were
// freed by both, so no remote arrival or copy reaches a block that has exited.
//
// Accumulator layout (wgmma.cuh): warp w of a warpgroup holds rows 16w + g and
// 16w + g + 8 (g = lane / 4), d[4j + i] at column 8j + 2(lane % 4) + i % 2, row
// + 8 for i >= 2. Stage 1 puts the gate rows of the weight tile first and the up
// rows second, so gate column c and up column c sit in the same thread
// (d[4j + i] and d[4(j + block_n/16) + i]).
//
// Requirements (the hosts check them): rows of K a multiple of 16 bytes with
// 16-byte aligned bases (TMA strides, 16-byte gathers); experts * w_rows < 2^31
// (TMA coordinates are 32-bit).
//
// The Op policy (see Bf16WsOp below and fused_moe_q8's Q8WsOp):
//   Params              kernel parameters: the fields of detail::GemmParams that
//                       name routing and shapes, `a` (row-major codes/elements),
//                       `w_map` (weights as one 2-D tensor (experts * w_rows, k))
//   Acc                 wgmma accumulator element (float, or int32_t for int8)
//   kElemBytes          bytes per element of A and W
//   kPromote            add the accumulator into fp32 after every slice
//   mma<BN>(acc, a, b, fresh)  fresh: the slice's first MMA overwrites acc
//                       (the wgmma of one slice; shared-memory addresses of the
//                       slab's A rows and of the B tile)
//   kSliceScales        kPromote: each slice's accumulator is multiplied by
//                       a_slice_scale * w_slice_scale before it is added in
//   a_slice_scale(p, arow, slice), w_slice_scale(p, wrow, expert, slice)
//                       (kSliceScales) the addresses of A row arow's and weight row
//                       wrow's scale for the slice (copied by the producer)
//   kScaleBlockRows     (kSliceScales) weight rows per weight scale
//   kInterDimMultiple   (kSliceScales) what the problem's inter_dim is a multiple of
//   row_scale(p, arow), col_scale(p, wrow, expert)   the output is the summed value
//                       times (row_scale * col_scale): the scales that factor out of
//                       all of K. Read once per row and per column of the tile, through
//                       the read-only path, so the epilogue's loads need not wait for
//                       its stores (they could alias as far as the compiler knows).
//   kColScales          col_scale is not always 1
//   col_scale_uniform(p)  (kColScales) every column of every expert's tile has one
//                       col_scale (that of weight row 0): the epilogue reads it once per tile
//   store16(p, v)       stage 1's 16-bit output element
#pragma once
#include <cstdint>
#include <numeric>
#include <type_traits>

#include "kernels/fused_moe/fmoe_device.cuh"
#include "kernels/fused_moe/fused_moe_params.hpp"
#include "kernels/fused_moe/tile.hpp"
#include "kernels/fused_moe/tma.cuh"
#include "kernels/fused_moe/wgmma.cuh"

namespace moe::fused_moe::dev {

template <int BM, int BN, int STAGES>
struct WsTile {
  static constexpr int kRowBytes = 128;        // one 128-byte swizzle row per K slice
  static constexpr int kMmaGroups = BM / 64;   // one m64 slab each
  static constexpr int kThreads = (kMmaGroups + 1) * 128;
  static constexpr int kATile = BM * kRowBytes;  // bytes of one slot's A tile
  static constexpr int kBTile = BN * kRowBytes;
  static constexpr int kRowsPerThread = BM / 16;  // producer: 8 threads per 128-byte row
  static_assert(BM % 64 == 0 && BM >= 64 && BM <= 128, "wgmma_ws: block_m 64 or 128 (one m64 slab per MMA warpgroup)");
  static_assert(BN == 128 || BN == 192 || BN == 256, "wgmma_ws: block_n 128, 192 or 256 (one m64nN wgmma per slab)");
  static_assert(STAGES >= 2, "wgmma_ws: at least two slots");
  // setmaxnreg moves registers within the block's allocation at launch (65536 per SM,
  // one block, in steps of 8 per thread). The producer keeps 56 (ptxas spilled its row
  // offsets at 40 in the bf16 tiles, and at 48 in the cluster tiles); the MMA warpgroups
  // share the rest (224 each at block_m 128).
  static constexpr int kLaunchRegs = (65536 / kThreads) / 8 * 8 < 248 ? (65536 / kThreads) / 8 * 8 : 248;
  static constexpr int kProducerRegs = 56;
  static constexpr int kMmaRegsFit = (kLaunchRegs * kThreads / 128 - kProducerRegs) / kMmaGroups / 8 * 8;
  static constexpr int kMmaRegs = kMmaRegsFit < 240 ? kMmaRegsFit : 240;
  static_assert(128 * (kProducerRegs + kMmaRegs * kMmaGroups) <= kLaunchRegs * kThreads,
                "wgmma_ws: registers of the warpgroups do not fit");
  static_assert(kMmaRegs >= 224, "wgmma_ws: an MMA warpgroup needs 224 registers (up to 128 accumulators)");
};

// The 16-bit layer: bf16/fp16 operands, fp32 accumulators, no scales.
template <class Elem>
struct Bf16WsOp {
  using Params = detail::GemmParams;
  using Acc = float;
  static constexpr int kElemBytes = 2;
  static constexpr bool kPromote = false;
  template <int BN>
  __device__ static void mma(Acc* acc, uint32_t a_addr, uint32_t b_addr, bool /*fresh: never, no kPromote*/) {
#if FMOE_HAVE_WGMMA
#pragma unroll
    for (int k16 = 0; k16 < 4; ++k16)
      wgmma_m64k16<BN, Elem>(acc, wgmma_desc(a_addr + k16 * 32), wgmma_desc(b_addr + k16 * 32));
#else
    (void)acc, (void)a_addr, (void)b_addr;
#endif
  }
  static constexpr bool kSliceScales = false;
  // The tile order of expert runs (GemmParams::group_mode 1) is compiled for this layer only.
  static constexpr bool kExpertRuns = true;
  __device__ static float row_scale(const Params&, int64_t) { return 1.0f; }
  static constexpr bool kColScales = false;
  __device__ static float col_scale(const Params&, int64_t, int) { return 1.0f; }
  __device__ static uint16_t store16(const Params&, float v) { return Elem::from_float(v); }
};

// The columns of a half that share one weight-block scale (Op::kSliceScales): the whole half
// where halves lie in one block (the host's q8_shape_fits), else the alignment of the halves'
// starts within the blocks, which kScaleBlockRows, BN / 2 and (stage 1, where the up half
// starts at row inter_dim) Op::kInterDimMultiple divide.
template <class Op, int BN, int STAGE>
constexpr int ws_scale_group_cols() {
  if constexpr (!Op::kSliceScales) {
    return BN / 2;
  } else {
    if constexpr (Op::kScaleBlockRows % (BN / 2) == 0) return BN / 2;
    else return std::gcd(std::gcd(BN / 2, Op::kScaleBlockRows), STAGE == 1 ? Op::kInterDimMultiple : BN / 2);
  }
}

template <class Op, int BM, int BN, int STAGES, int STAGE, int CLUSTER>
__global__ void __launch_bounds__((BM / 64 + 1) * 128, 1)  // WsTile::kThreads (no commas: HIP's macro)
    grouped_gemm_ws_kernel(const FMOE_GRID_CONSTANT typename Op::Params p) {
#if FMOE_HAVE_WGMMA && defined(FMOE_HAVE_TMA)
  using T = WsTile<BM, BN, STAGES>;
  static_assert(T::kThreads == (BM / 64 + 1) * 128, "launch bounds");
  static_assert(CLUSTER == 1 || CLUSTER == 2, "wgmma_ws: clusters of 1 or 2 blocks");
  using Acc = typename Op::Acc;
  constexpr int BK = T::kRowBytes / Op::kElemBytes;  // K elements per slice
  // The weight slice as boxes of kBoxRows rows (the host's tensor map has the same box):
  // box b starts b * box_stride weight rows after the tile's first (stage 1: gate, up).
  constexpr int kBoxRows = fused_moe::ws_weight_box_rows(BN, STAGE, CLUSTER);
  constexpr int kBoxes = BN / kBoxRows;
  constexpr int kBoxBytes = kBoxRows * T::kRowBytes;
  static_assert(CLUSTER == 1 || kBoxes == CLUSTER, "wgmma_ws: one weight box per block of the cluster");
  extern __shared__ uint4 fmoe_ws_smem[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(fmoe_ws_smem);
  smem += ((smem_u32(smem) + 1023u) & ~1023u) - smem_u32(smem);  // swizzle atoms: 1024-byte aligned
  unsigned char* const sA = smem;
  unsigned char* const sB = smem + STAGES * T::kATile;
  // Op::kSliceScales: per slot the A rows' scales, then one weight-block scale per group of
  // kScaleGroup columns of each half (u * kScaleGroups + g), chosen by the producer, so that
  // the MMA warps' promotion reads its scales without choosing between blocks.
  constexpr int kScaleFloats = fused_moe::ws_slice_scale_floats(BM);
  constexpr int kScaleGroup = ws_scale_group_cols<Op, BN, STAGE>();
  constexpr int kScaleGroups = BN / 2 / kScaleGroup;
  static_assert(kScaleGroup % 8 == 0, "a lane's column pair (8j + c0, +1) takes one scale");
  static_assert(2 * kScaleGroups <= fused_moe::kWsMaxWeightScales, "the slot's weight-scale floats");
  float* const sScale = reinterpret_cast<float*>(sB + STAGES * T::kBTile);
  __shared__ alignas(8) uint64_t full[STAGES];
  __shared__ alignas(8) uint64_t empty[STAGES];
  __shared__ alignas(8) uint64_t tile_full[2];   // claimed tiles (p.tile_counter): published
  __shared__ alignas(8) uint64_t tile_empty[2];  // and read by every MMA warp
  __shared__ int64_t claimed_tile[2];

  const int tid = static_cast<int>(threadIdx.x);
  const int group = tid / 128;  // 0: producer; 1..: MMA warpgroups
  const int t = tid % 128;
  auto init_barriers = [&](uint32_t empty_arrivals) {
    if (tid == 0) {
      for (int s = 0; s < STAGES; ++s) {
        mbar_init(&full[s], 128 + 1);          // 128 producer threads' copies + the TMA's expect_tx
        mbar_init(&empty[s], empty_arrivals);  // lane 0 of every MMA warp (of both blocks of a cluster)
      }
      for (int s = 0; s < 2; ++s) {
        mbar_init(&tile_full[s], 1);
        mbar_init(&tile_empty[s], T::kMmaGroups * 4);
      }
      fence_barrier_init();
    }
  };
  if constexpr (CLUSTER == 1) {
    init_barriers(T::kMmaGroups * 4);
    __syncthreads();
  }

  pdl_launch_dependents();
  pdl_wait();
  const TileSpace ts = tile_space<BM, BK>(p);
  const int64_t K = p.k;
  const int64_t row_bytes = K * Op::kElemBytes;
  const unsigned char* const a_base = reinterpret_cast<const unsigned char*>(p.a);

  // Tile -> (split, m-block, n-tile, K slices); false when the tile holds no rows.
  struct Work {
    int split, m_blk, n_tile, expert, nk;
    int64_t kt_begin;
  };
  auto decode = [&](int64_t tile, Work& w) -> bool {
    w.split = static_cast<int>(tile / ts.tiles_per_split);
    bool runs = false;
    if constexpr (Op::kExpertRuns) runs = p.group_mode == 1;
    if (runs)  // runs of one expert's m-blocks (read through L1: every thread decodes)
      expert_run_tile(tile % ts.tiles_per_split, ts.valid_m, p.group_m, p.n_tiles,
                      [&](int b) { return __ldg(p.expert_ids + b); }, w.m_blk, w.n_tile);
    else
      grouped_tile(tile % ts.tiles_per_split, ts.num_m, p.group_m, p.n_tiles, w.m_blk, w.n_tile);
    if (w.m_blk >= ts.valid_m) return false;
    w.expert = p.expert_ids[w.m_blk];
    w.kt_begin = static_cast<int64_t>(w.split) * p.k_tiles_per_split;
    int64_t kt_end = w.kt_begin + p.k_tiles_per_split;
    if (kt_end > ts.k_tiles) kt_end = ts.k_tiles;
    const bool expert_ok = w.expert >= 0 && w.expert < p.experts;
    w.nk = (expert_ok && kt_end > w.kt_begin) ? static_cast<int>(kt_end - w.kt_begin) : 0;  // 0: zero output
    return true;
  };

  // First weight row of half u of the tile's columns (stage 1: gate, up; stage 2: the two
  // halves of block_n): the block scheme's weight scales are constant within one.
  auto half_wrow = [&](const Work& w, int u) -> int64_t {
    if constexpr (STAGE == 1) return u * p.n + static_cast<int64_t>(w.n_tile) * (BN / 2);
    else return static_cast<int64_t>(w.n_tile) * BN + u * (BN / 2);
  };

  // Both blocks of a cluster walk the same tile pairs: tile = blockIdx.x, += gridDim.x (an
  // even grid for clusters), the partner's tile = tile ^ 1. A round is one step of the walk.
  uint32_t rank = 0;
  if constexpr (CLUSTER == 2) rank = cluster_ctarank();
  struct Round {
    Work w;
    bool mine;    // this block's tile holds rows (w is valid)
    bool shared;  // CLUSTER 2: both tiles load the same weight slices, one box each
    int slices;   // K slices both rings pass this round (the longer of the pair's tiles)
  };
  auto round_of = [&](int64_t tile, Round& r) {
    r.mine = tile < ts.total && decode(tile, r.w);
    const int nk = r.mine ? r.w.nk : 0;
    r.shared = false;
    r.slices = nk;
    if constexpr (CLUSTER == 2) {
      Work o{};
      const int64_t other = tile ^ 1;
      const int other_nk = other < ts.total && decode(other, o) ? o.nk : 0;
      r.shared = nk > 0 && nk == other_nk && r.w.expert == o.expert && r.w.n_tile == o.n_tile && r.w.split == o.split;
      r.slices = nk > other_nk ? nk : other_nk;
    }
  };
  // The tile of round `round` (see the head comment). by_claim: the claimed sequence.
  const bool by_claim = CLUSTER == 1 && p.tile_counter != nullptr;
  const int64_t claims_end = ts.total > static_cast<int64_t>(gridDim.x) ? ts.total : gridDim.x;
  auto claim = [&]() -> int32_t { return atomicAdd(p.tile_counter, 1); };
  auto last_claim = [&](int32_t c) {  // every block has made its claims: reset for the next launch
    if (c == claims_end - 1) atomicExch(p.tile_counter, 0);
  };
  auto strided_tile = [&](int round) -> int64_t { return blockIdx.x + static_cast<int64_t>(round) * gridDim.x; };
  int32_t next_claim = 0;  // producer thread 0: the claim of the next round, in flight
  auto producer_tile = [&](int round) -> int64_t {
    if (!by_claim) return strided_tile(round);
    const int slot = round & 1;
    if (t == 0) {
      int64_t tile = blockIdx.x;
      if (round > 0) {
        tile = static_cast<int64_t>(gridDim.x) + next_claim;
        if (tile >= ts.total) last_claim(next_claim);
      }
      if (tile < ts.total) {
        next_claim = claim();
      } else if (round == 0) {  // no tile at all: still this block's one claim past the end
        last_claim(claim());
      }
      if (round >= 2) mbar_wait(&tile_empty[slot], ((round >> 1) - 1) & 1);
      claimed_tile[slot] = tile;
      mbar_arrive(&tile_full[slot]);
    }
    barrier_sync(T::kMmaGroups + 1, 128);  // the producer warpgroup (ids 1..kMmaGroups: the slabs)
    return claimed_tile[slot];
  };
  auto mma_tile = [&](int round) -> int64_t {
    if (!by_claim) return strided_tile(round);
    const int slot = round & 1;
    mbar_wait(&tile_full[slot], (round >> 1) & 1);
    const int64_t tile = claimed_tile[slot];
    __syncwarp();
    if (t % 32 == 0) mbar_arrive(&tile_empty[slot]);
    return tile;
  };
  if constexpr (CLUSTER == 2) {
    init_barriers(T::kMmaGroups * 4 * 2);
    cluster_sync();  // the partner's barriers exist before any copy or arrival reaches them
  }

  if (group == 0) {
    // ---------------- producer
    setmaxnreg_dec<T::kProducerRegs>();
    const int kc = t % 8;  // this thread's 16-byte chunk of every row it gathers
    uint32_t slice = 0;
    for (int round = 0;; ++round) {
      const int64_t tile = producer_tile(round);
      if (tile - rank >= ts.total) break;
      Round rd{};
      round_of(tile, rd);
      if (rd.slices == 0) continue;
      const Work& w = rd.w;
      const int nk = rd.mine ? w.nk : 0;
      // This thread's 16-byte chunk kc of each row it gathers (token row for stage 1, slot for
      // stage 2), as an address at K slice 0, nullptr for padding: per slice only an add, so
      // the producer issues few instructions beside its copies (it shares the SM sub-partitions'
      // issue slots with the MMA warps).
      const unsigned char* asrc[T::kRowsPerThread];
#pragma unroll
      for (int i = 0; i < T::kRowsPerThread; ++i) {
        const int32_t id =
            (CLUSTER == 1 || nk > 0) ? p.sorted_ids[static_cast<int64_t>(w.m_blk) * BM + t / 8 + 16 * i] : -1;
        const bool ok = id >= 0 && static_cast<int64_t>(id) < p.num_valid;
        asrc[i] = ok ? a_base + static_cast<int64_t>(STAGE == 1 ? id / p.top_k : id) * row_bytes + kc * 16 : nullptr;
      }
      // Op::kSliceScales: thread t copies the scales of row t (one row each: fewer
      // live registers than the scales of the rows it gathers).
      int32_t scale_row = -1;
      if constexpr (Op::kSliceScales) {
        const int32_t id = (t < BM && (CLUSTER == 1 || nk > 0)) ? p.sorted_ids[static_cast<int64_t>(w.m_blk) * BM + t] : -1;
        if (id >= 0 && static_cast<int64_t>(id) < p.num_valid) scale_row = STAGE == 1 ? id / p.top_k : id;
      }
      const int32_t wrow0 = w.expert * static_cast<int32_t>(p.w_rows) +
                            w.n_tile * (STAGE == 1 ? BN / 2 : BN);
      const int32_t box_stride = STAGE == 1 ? static_cast<int32_t>(p.n) : kBoxRows;
      for (int kk = 0; kk < rd.slices; ++kk, ++slice) {
        const int slot = static_cast<int>(slice % STAGES);
        mbar_wait(&empty[slot], ((slice / STAGES) & 1) ^ 1);  // the first round passes at once
        if constexpr (CLUSTER == 2) {
          if (kk >= nk) {  // an empty slice (the partner's tile is longer): the arrivals alone
            if (t == 0) mbar_arrive(&full[slot]);
            mbar_arrive(&full[slot]);
            continue;
          }
        }
        const int64_t kt = w.kt_begin + kk;
        const int32_t kcol = static_cast<int32_t>(kt * BK);
        unsigned char* b_dst = sB + slot * T::kBTile;
        if (t == 0) {
          mbar_arrive_expect_tx(&full[slot], T::kBTile);  // all boxes, whichever block loads them
          if (rd.shared) {
            tma_load_2d_multicast(b_dst + rank * kBoxBytes, &p.w_map, &full[slot], kcol,
                                  wrow0 + static_cast<int32_t>(rank) * box_stride, 0x3);
          } else {
#pragma unroll
            for (int b = 0; b < kBoxes; ++b)
              tma_load_2d(b_dst + b * kBoxBytes, &p.w_map, &full[slot], kcol, wrow0 + b * box_stride);
          }
        }
        // Row r = t / 8 + 16 i of the slot, chunk kc in the 128-byte swizzle (r & 7 = (t / 8) & 7).
        unsigned char* a_dst = sA + slot * T::kATile + (t / 8) * T::kRowBytes + ((kc ^ ((t / 8) & 7)) << 4);
        const int64_t kbyte = kt * T::kRowBytes;
        const bool k_ok = kbyte + kc * 16 < row_bytes;  // the K tail: chunks past the row read zeros
#pragma unroll
        for (int i = 0; i < T::kRowsPerThread; ++i) {
          const bool ok = asrc[i] != nullptr && k_ok;
          copy16_async(a_dst + i * 16 * T::kRowBytes, ok ? asrc[i] + kbyte : a_base, ok);
        }
        if constexpr (Op::kSliceScales) {
          float* const s_dst = sScale + slot * kScaleFloats;
          if (t < BM)  // zero for padding
            copy4_async(s_dst + t, Op::a_slice_scale(p, scale_row >= 0 ? scale_row : 0, kt), scale_row >= 0);
          if (t < 2 * kScaleGroups) {  // the block of group g of half u (zero past the expert's rows)
            const int u = t / kScaleGroups, g = t % kScaleGroups;
            const int64_t wrow = half_wrow(w, u) + kScaleGroup * g;  // the group's first weight row
            const bool ok = wrow < p.w_rows;
            copy4_async(s_dst + BM + t, Op::w_slice_scale(p, ok ? wrow : 0, w.expert, kt), ok);
          }
        }
        cp_async_mbar_arrive_noinc(&full[slot]);
      }
    }
    if (CLUSTER == 2 && t == 0) {
      // Wait until both blocks' MMA warps have freed the last STAGES slices: after that
      // no arrival of the partner and no copy of either block targets this block.
      for (int i = 0; i < STAGES; ++i, ++slice)
        mbar_wait(&empty[slice % STAGES], ((slice / STAGES) & 1) ^ 1);
    }
    return;
  }

  // ---------------- MMA warpgroups
  setmaxnreg_inc<T::kMmaRegs>();
  const int slab = group - 1;     // rows 64 * slab .. of the tile
  const int warp4 = (t / 32) % 4;  // warp within the warpgroup
  const int lane = t % 32;
  const int r0 = slab * 64 + warp4 * 16 + lane / 4;  // this thread's rows r0 and r0 + 8
  const int c0 = 2 * (lane % 4);                     // and columns 8j + c0, +1
  constexpr int kAcc = BN / 2;
  constexpr int kHalf = BN / 16;  // accumulator atoms per half tile (stage 1: the gate atoms)
  // Frees a slot: lane 0 of each warp, on this block's barrier and, in a cluster, on the
  // partner's (the two rings stay in step whether or not a round shares its slices).
  auto release = [&](uint32_t s) {
    if (lane == 0) {
      mbar_arrive(&empty[s]);
      if constexpr (CLUSTER == 2) mbar_arrive_cluster(&empty[s], rank ^ 1u);
    }
  };
  // Passes n slices without MMAs: a dead slab, a missing tile, the partner's longer tile.
  auto pass_slices = [&](int n, uint32_t& slice) {
    for (int i = 0; i < n; ++i, ++slice) {
      const int slot = static_cast<int>(slice % STAGES);
      mbar_wait(&full[slot], (slice / STAGES) & 1);
      release(slot);
    }
  };
  uint32_t slice = 0;
  for (int round = 0;; ++round) {
    const int64_t tile = mma_tile(round);
    if (tile - rank >= ts.total) break;
    Round rd{};
    round_of(tile, rd);
    if (!rd.mine) {
      if constexpr (CLUSTER == 2) pass_slices(rd.slices, slice);
      continue;
    }
    const Work& w = rd.w;
    // This thread's output rows (r0, r0 + 8), read before the K loop: off the epilogue's path.
    int32_t ids[2];
    int64_t arows[2];  // A row of each (token for stage 1, slot for stage 2): its scales
    float scale[2];    // routed weight (or 1)
    float rscale[2];   // Op::row_scale
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int32_t id = p.sorted_ids[static_cast<int64_t>(w.m_blk) * BM + r0 + 8 * h];
      const bool ok = id >= 0 && static_cast<int64_t>(id) < p.num_valid;
      ids[h] = ok ? id : -1;
      arows[h] = ok ? (STAGE == 1 ? id / p.top_k : id) : 0;
      scale[h] = (ok && p.scale_mode == STAGE) ? p.topk_weights[id] : 1.0f;
      rscale[h] = Op::row_scale(p, arows[h]);  // (row 0 for padding: read, never stored)
    }
    Acc acc[kAcc];
    float tot[Op::kPromote ? kAcc : 1];
#pragma unroll
    for (int e = 0; e < kAcc; ++e) {
      acc[e] = Acc(0);
      if constexpr (Op::kPromote) tot[e] = 0.0f;
    }
    // A slab whose 64 rows are all padding (an expert's last block holding <= 64 rows)
    // issues no wgmma: the other warpgroup gets the tensor cores. It still takes every
    // slot in turn and frees it, so the ring's phases stay those of the producer.
    // (Each row is held by 4 threads of the warpgroup: the OR covers all 64.)
    const bool slab_live = barrier_or(1 + slab, 128, ids[0] >= 0 || ids[1] >= 0);
    if (!slab_live) {
      // (w.nk equals rd.slices in CLUSTER 1; rd.slices here changed the one-block kernel's PTX)
      pass_slices(CLUSTER == 1 ? w.nk : rd.slices, slice);
      continue;  // no row to store
    }
    for (int kk = 0; kk < w.nk; ++kk, ++slice) {
      const int slot = static_cast<int>(slice % STAGES);
      mbar_wait(&full[slot], (slice / STAGES) & 1);
      fence_proxy_async();  // the gathered rows were written through the generic proxy (cp.async)
      wgmma_fence();
      Op::template mma<BN>(acc, smem_u32(sA + slot * T::kATile + slab * 64 * T::kRowBytes),
                           smem_u32(sB + slot * T::kBTile), /*fresh=*/Op::kPromote);
      wgmma_commit();
      if constexpr (Op::kPromote) {
        // The slice's scales from its slot: the rows' (r0 + 8h) while the MMAs run, the column
        // groups' after them (fewer registers live across the wait); s[h][u][g] for column
        // group g of half u.
        [[maybe_unused]] const float* const ss = sScale + slot * kScaleFloats;
        [[maybe_unused]] float a_sc[2];
        if constexpr (Op::kSliceScales)
#pragma unroll
          for (int h = 0; h < 2; ++h) a_sc[h] = ss[r0 + 8 * h];
        // This slice's accumulator is final: add it into fp32 (the next slice overwrites it).
        // (Two accumulator sets on alternate slices, one promoted while the next runs, were
        // no faster: docs/notes/quant.md.)
        wgmma_wait<0>();
        [[maybe_unused]] float s[2][2][kScaleGroups];
        if constexpr (Op::kSliceScales) {
#pragma unroll
          for (int v = 0; v < 2 * kScaleGroups; ++v) {
            const float w_sc = ss[BM + v];
#pragma unroll
            for (int h = 0; h < 2; ++h) s[h][v / kScaleGroups][v % kScaleGroups] = a_sc[h] * w_sc;
          }
          __syncwarp();  // every lane's scale reads before lane 0 frees the slot
        }
        release(slot);
        // Accumulator e: rows r0 + 8h, columns 8 * (e / 4) + c0, +1 of the tile (half u).
#pragma unroll
        for (int e = 0; e < kAcc; ++e) {
          const int h = (e % 4) / 2, u = (e / 4) / kHalf, col = 8 * ((e / 4) % kHalf);  // column in half u
          if constexpr (Op::kSliceScales) tot[e] += static_cast<float>(acc[e]) * s[h][u][col / kScaleGroup];
          else tot[e] += static_cast<float>(acc[e]);
        }
      } else {
        wgmma_wait<1>();  // the previous slice's MMAs are done: free its slot
        // (wait_group is warp-synchronous: once lane 0 is past it, the whole warp is)
        if (kk > 0) release((slice - 1) % STAGES);
      }
    }
    if constexpr (!Op::kPromote) {
      wgmma_wait<0>();
      if (w.nk > 0) release((slice - 1) % STAGES);
    }
    if constexpr (CLUSTER == 2) pass_slices(rd.slices - w.nk, slice);
    // The summed value of accumulator e.
    auto sum = [&](int e) -> float {
      if constexpr (Op::kPromote) return tot[e];
      else return static_cast<float>(acc[e]);
    };

    // ---- epilogue (rows r0, r0 + 8 of this thread)
    // kUniform: every column's col_scale is 1 here (folded into rscale when the Op's are one
    // value): the per-column loads and their address math leave the epilogue.
    auto store_tile = [&](auto uniform) {
      constexpr bool kUniform = decltype(uniform)::value;
      const int64_t n = p.n;
      const bool pair_store = n % 2 == 0;
      if constexpr (STAGE == 1) {
        uint16_t* out = static_cast<uint16_t*>(p.out);
#pragma unroll
        for (int j = 0; j < kHalf; ++j) {
          const int64_t col = static_cast<int64_t>(w.n_tile) * (BN / 2) + 8 * j + c0;
          float gscale[2], uscale[2];  // Op::col_scale of the gate and up columns, both rows
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            gscale[e] = kUniform ? 1.0f : Op::col_scale(p, col + e, w.expert);
            uscale[e] = kUniform ? 1.0f : Op::col_scale(p, n + col + e, w.expert);
          }
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (ids[h] < 0) continue;
            uint16_t v[2];
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int gi = 4 * j + 2 * h + e, ui = 4 * (j + kHalf) + 2 * h + e;
              const float g = sum(gi) * (rscale[h] * gscale[e]) * scale[h];
              const float u = sum(ui) * (rscale[h] * uscale[e]) * scale[h];
              v[e] = Op::store16(p, (p.act == 0 ? silu(g) : gelu_tanh(g)) * u);
            }
            uint16_t* dst = out + static_cast<int64_t>(ids[h]) * n + col;
            if (pair_store && col + 1 < n) {
              *reinterpret_cast<uint32_t*>(dst) = static_cast<uint32_t>(v[0]) | (static_cast<uint32_t>(v[1]) << 16);
            } else {
              if (col < n) dst[0] = v[0];
              if (col + 1 < n) dst[1] = v[1];
            }
          }
        }
      } else {
        float* out = static_cast<float*>(p.out) + static_cast<int64_t>(w.split) * p.split_stride;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
          const int64_t col = static_cast<int64_t>(w.n_tile) * BN + 8 * j + c0;
          const float cs0 = kUniform ? 1.0f : Op::col_scale(p, col, w.expert);
          const float cs1 = kUniform ? 1.0f : Op::col_scale(p, col + 1, w.expert);
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (ids[h] < 0) continue;
            const float v0 = sum(4 * j + 2 * h) * (rscale[h] * cs0) * scale[h];
            const float v1 = sum(4 * j + 2 * h + 1) * (rscale[h] * cs1) * scale[h];
            float* dst = out + static_cast<int64_t>(ids[h]) * n + col;
            if (pair_store && col + 1 < n) {
              *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
            } else {
              if (col < n) dst[0] = v0;
              if (col + 1 < n) dst[1] = v1;
            }
          }
        }
      }
    };
    if constexpr (Op::kColScales) {
      if (Op::col_scale_uniform(p)) {
        const float cs = Op::col_scale(p, 0, w.expert);
        // (rscale * cs) * 1 is the unfolded (rscale * col_scale): the same bits
#pragma unroll
        for (int h = 0; h < 2; ++h) rscale[h] *= cs;
        store_tile(std::true_type{});
      } else {
        store_tile(std::false_type{});
      }
    } else {
      store_tile(std::true_type{});
    }
  }
#elif defined(__CUDA_ARCH__)
  (void)p;
  __trap();  // not an sm_90a build: the host never launches wgmma_ws shapes here
#else
  (void)p;
#endif
}

}  // namespace moe::fused_moe::dev
