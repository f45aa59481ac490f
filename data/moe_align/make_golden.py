#!/usr/bin/env python3
"""Golden vectors for moe_align_block_size, from an implementation independent of
the C++ reference: a stable torch.sort by expert, torch.bincount for the counts,
scattered into a sentinel-filled tensor. Without PyTorch (or with --python) a
plain-Python version (dict of per-expert lists) computes the same thing; the
'generator' field of each file says which one produced it.

Inputs come from Python's random.Random(seed), so both generators see the same
ids and must write identical expected outputs.

    python3 data/moe_align/make_golden.py [--out DIR] [--python] [--check]

--check: compute with both implementations (torch must be present) and fail on
any difference, without writing.

Contract: see kernels/moe_align/moe_align.hpp. block_size a power of two in
[16, 256]; 1 <= E <= 4096; 1 <= top_k <= min(E, 64); M >= 1; ids in [-1, E);
expert_map entries in [-1, E). Cases that break a rule are written with
"expect_error": true and no expected outputs.
"""
import argparse
import json
import os
import random
import sys

try:
    import torch
except ImportError:  # plain-Python fallback
    torch = None


def contract_error(M, k, E, bs, ids, expert_map):
    if M < 1:
        return "M < 1"
    if not 1 <= E <= 4096:
        return "E outside [1, 4096]"
    if not 1 <= k <= 64 or k > E:
        return "top_k outside [1, min(E, 64)]"
    if bs < 16 or bs > 256 or bs & (bs - 1):
        return "block_size not a power of two in [16, 256]"
    if len(ids) != M * k:
        return "ids length"
    if any(v < -1 or v >= E for v in ids):
        return "id outside [-1, E)"
    if expert_map is not None and (len(expert_map) != E or any(v < -1 or v >= E for v in expert_map)):
        return "bad expert_map"
    return None


def capacity(M, k, E, bs):
    # The bound min(n + E*(bs-1), n*bs), rounded down to whole blocks.
    n = M * k
    return min(n + E * (bs - 1), n * bs) // bs * bs


def align_torch(M, k, E, bs, ids, expert_map):
    n = M * k
    t = torch.tensor(ids, dtype=torch.int64)
    eff = torch.full_like(t, -1)
    valid = t >= 0
    if expert_map is None:
        eff[valid] = t[valid]
    else:
        eff[valid] = torch.tensor(expert_map, dtype=torch.int64)[t[valid]]
    keep = eff >= 0
    slots = torch.arange(n, dtype=torch.int64)[keep]
    experts = eff[keep]
    order = torch.sort(experts, stable=True).indices
    slots, experts = slots[order], experts[order]
    counts = torch.bincount(experts, minlength=E)
    padded = (counts + bs - 1) // bs * bs
    total = int(padded.sum())
    seg_start = torch.cumsum(padded, 0) - padded
    cnt_start = torch.cumsum(counts, 0) - counts
    out = torch.full((total,), n, dtype=torch.int64)
    rank = torch.arange(slots.numel(), dtype=torch.int64) - cnt_start[experts]
    out[seg_start[experts] + rank] = slots
    expert_ids = torch.repeat_interleave(torch.arange(E, dtype=torch.int64), padded // bs)
    return out.tolist(), expert_ids.tolist(), total


def align_python(M, k, E, bs, ids, expert_map):
    n = M * k
    per = {}
    for i, v in enumerate(ids):
        if v == -1:
            continue
        e = v if expert_map is None else expert_map[v]
        if e == -1:
            continue
        per.setdefault(e, []).append(i)
    out, expert_ids = [], []
    for e in sorted(per):
        seg = per[e]
        pad = -len(seg) % bs
        out += seg + [n] * pad
        expert_ids += [e] * ((len(seg) + pad) // bs)
    return out, expert_ids, len(out)


def make_cases():
    cases = []

    def add(name, M, k, E, bs, ids, expert_map=None):
        cases.append(dict(name=name, num_tokens=M, top_k=k, num_experts=E, block_size=bs,
                          topk_ids=ids, expert_map=expert_map))

    # Hand-written: the worked example of moe_align.hpp, with and without a map.
    add("worked_example", 3, 2, 4, 16, [2, 0, 2, 3, -1, 2])
    add("worked_example_map", 3, 2, 4, 16, [2, 0, 2, 3, -1, 2], [-1, -1, 0, 1])
    add("all_masked", 4, 2, 8, 16, [-1] * 8)
    add("all_remote", 2, 2, 4, 32, [0, 1, 2, 3], [-1] * 4)
    add("single_expert_e1", 5, 1, 1, 16, [0] * 5)
    add("exact_multiple", 8, 2, 2, 16, [1] * 16)
    add("one_expert_many_blocks", 20, 2, 8, 16, [5] * 40)
    add("top_k_equals_e", 3, 4, 4, 32, [3, 1, 0, 2, 0, 1, 2, 3, 2, 3, 1, 0])
    add("capacity_attained", 9, 2, 4, 16, [0, 1, 2, 3] + [0] * 14)

    # Random: softmax-like distinct experts per token, some masked, some maps.
    rng = random.Random(20261126)
    shapes = [(1, 1, 2, 16), (1, 8, 256, 64), (5, 2, 8, 16), (13, 4, 17, 32), (33, 6, 64, 64),
              (64, 8, 16, 16), (100, 2, 8, 128), (7, 16, 257, 256), (50, 1, 3, 16), (40, 8, 160, 32)]
    for idx, (M, k, E, bs) in enumerate(shapes):
        ids = []
        for _ in range(M):
            ids += rng.sample(range(E), k)
        masked = idx % 3 == 1
        if masked:
            ids = [-1 if rng.random() < 0.15 else v for v in ids]
        add(f"random_{idx:02d}_m{M}_k{k}_e{E}_b{bs}{'_masked' if masked else ''}", M, k, E, bs, ids)
        if idx % 2 == 0:
            emap, nxt = [], 0
            for _ in range(E):
                if rng.random() < 0.5:
                    emap.append(nxt)
                    nxt += 1
                else:
                    emap.append(-1)
            add(f"random_{idx:02d}_m{M}_k{k}_e{E}_b{bs}_halfremote", M, k, E, bs, ids, emap)

    # Invalid inputs: the reference must reject each.
    add("invalid_id_equals_e", 2, 2, 4, 16, [0, 1, 2, 4])
    add("invalid_id_below_minus1", 2, 2, 4, 16, [0, -2, 2, 3])
    add("invalid_block_size_24", 2, 2, 4, 24, [0, 1, 2, 3])
    add("invalid_block_size_8", 2, 2, 4, 8, [0, 1, 2, 3])
    add("invalid_top_k_above_e", 1, 4, 2, 16, [0, 1, 0, 1])
    add("invalid_m0", 0, 2, 4, 16, [])
    add("invalid_map_entry", 2, 2, 4, 16, [0, 1, 2, 3], [0, 1, 4, -1])
    return cases


def solve(case, impl):
    args = (case["num_tokens"], case["top_k"], case["num_experts"], case["block_size"],
            case["topk_ids"], case["expert_map"])
    err = contract_error(*args)
    if err is not None:
        return None, err
    s, b, total = impl(*args)
    return dict(sorted_token_ids=s, expert_ids=b, num_tokens_post_padded=total,
                capacity=capacity(*args[:4])), None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--python", action="store_true", help="use the plain-Python implementation")
    ap.add_argument("--check", action="store_true", help="compare torch with plain Python, write nothing")
    a = ap.parse_args()
    cases = make_cases()
    if a.check:
        if torch is None:
            sys.exit("--check needs torch")
        for c in cases:
            t, _ = solve(c, align_torch)
            p, _ = solve(c, align_python)
            if t != p:
                sys.exit(f"torch and python differ on {c['name']}")
        print(f"{len(cases)} cases: torch {torch.__version__} and plain Python agree")
        return
    use_torch = torch is not None and not a.python
    impl = align_torch if use_torch else align_python
    generator = f"torch {torch.__version__}" if use_torch else f"python {sys.version.split()[0]}"
    for c in cases:
        expected, err = solve(c, impl)
        doc = dict(name=c["name"], generator=generator, num_tokens=c["num_tokens"], top_k=c["top_k"],
                   num_experts=c["num_experts"], block_size=c["block_size"], topk_ids=c["topk_ids"],
                   expert_map=c["expert_map"])
        if err is not None:
            doc["expect_error"] = True
            doc["error"] = err
        else:
            doc["expected"] = expected
        with open(os.path.join(a.out, c["name"] + ".json"), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
    print(f"wrote {len(cases)} cases to {a.out} with {generator}")


if __name__ == "__main__":
    main()
