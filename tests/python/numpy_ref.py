"""Independent NumPy versions of what the tests compare the module with: bf16
rounding, the Philox4x32-10 generator behind the harness's inputs, and the fused
MoE layer as a plain float64 loop."""
import numpy as np

M32 = np.uint64(0xFFFFFFFF)
S16, S32 = np.uint64(16), np.uint64(32)


def bf16_bits(x):
    """float32 -> bf16 bit patterns, round to nearest even (finite inputs)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + np.uint64(0x7FFF) + ((u >> S16) & np.uint64(1))) >> S16).astype(np.uint16)


def bf16_values(bits):
    """bf16 bit patterns -> float32 values (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def philox4x32_10(c, k):
    """Philox4x32-10 (Salmon et al. 2011) on uint64 arrays holding 32-bit words:
    c = [c0, c1, c2, c3], k = [k0, k1]; returns the four output words."""
    c = [np.asarray(v, dtype=np.uint64) & M32 for v in c]
    k0, k1 = (np.asarray(v, dtype=np.uint64) & M32 for v in k)
    for r in range(10):
        if r:
            k0 = (k0 + np.uint64(0x9E3779B9)) & M32
            k1 = (k1 + np.uint64(0xBB67AE85)) & M32
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [((p1 >> S32) ^ c[1] ^ k0) & M32, p1 & M32, ((p0 >> S32) ^ c[3] ^ k1) & M32, p0 & M32]
    return c


def harness_normal(seed, stream, index):
    """The harness's normal draw at (seed, stream, index): 16 uniform 16-bit
    integers from two Philox blocks (draws 1 and 2), centred, scaled by sqrt(3)/2/65536."""
    index = np.asarray(index, dtype=np.uint64)
    total = np.zeros(index.shape, dtype=np.int64)
    for draw in (1, 2):
        words = philox4x32_10([index & M32, index >> S32, stream, draw], [seed & 0xFFFFFFFF, seed >> 32])
        for w in words:
            total += (w & np.uint64(0xFFFF)).astype(np.int64) + (w >> S16).astype(np.int64)
    centred = (total + 8 - 8 * 65536).astype(np.float32)
    return centred * np.float32(0.86602540378443865 / 65536.0)


def silu(g):
    return g / (1.0 + np.exp(-g))


def fused_moe_loop(x, w1, w2, topk_weights, topk_ids, round_h=bf16_values):
    """out[t] = sum_j w_tj W2[e] round_h(silu(W1g[e] x_t) * (W1u[e] x_t)), float64 loops
    over tokens and slots (router weight on the output)."""
    x, w1, w2 = (np.asarray(a, dtype=np.float64) for a in (x, w1, w2))
    inter = w1.shape[1] // 2
    out = np.zeros((x.shape[0], x.shape[1]))
    for t in range(x.shape[0]):
        for j in range(topk_ids.shape[1]):
            e = int(topk_ids[t, j])
            g = w1[e, :inter] @ x[t]
            u = w1[e, inter:] @ x[t]
            h = silu(g) * u
            h = round_h(bf16_bits(h.astype(np.float32))).astype(np.float64)
            out[t] += float(topk_weights[t, j]) * (w2[e] @ h)
    return out
