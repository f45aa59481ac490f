#!/usr/bin/env python3
"""Golden vectors for the routing CPU references (reference/routing), from PyTorch.

    python3 data/routing/make_golden.py [--out data/routing/golden_routing.json]

Computes, with PyTorch on the CPU (fp32, as models do):
  softmax_topk   torch.topk(torch.softmax(x, -1), k)  [+ w / w.sum() when renormalize]
  grouped_topk   vLLM's grouped_topk (DeepSeek-V3 noaux_tc when a bias is given:
                 group score = sum of the top-2 biased scores; else the max)
  sigmoid_top1   logits = x.double() @ w.double(), id = argmax, weight = sigmoid
torch.topk's order among equal values is not defined, so inputs are drawn
WITHOUT near-ties: a row is redrawn until every decision (order inside the
top-k, the k / k+1 boundary, the kept-group boundary, the top-1 gap) has a
margin of at least MARGIN, measured in fp64. The C++ side
(harness/families/routing/routing_verify.cpp, run by tests/routing/test_routing_ref.cpp)
then compares ids exactly and weights within the documented tolerance.
Floats are written with 9 significant digits, which round-trip fp32 exactly.
"""
import argparse
import json
import math

import torch

MARGIN = 1e-3


def f9(t):
    return [float("%.9g" % v) for v in t.flatten().tolist()]


def rounded(x, dtype):
    if dtype == "bf16":
        return x.to(torch.bfloat16).float()
    if dtype == "fp16":
        return x.to(torch.float16).float()
    return x.float()


def sorted_gaps_ok(vals, count):
    """vals: 1-D fp64; the first `count`+1 of the descending order are MARGIN apart."""
    s = torch.sort(vals, descending=True).values
    n = min(count + 1, s.numel())
    if n < 2:
        return True
    return bool(torch.all(s[: n - 1] - s[1:n] >= MARGIN))


def softmax_case(g, name, M, E, k, dtype="fp32", renormalize=False):
    rows = []
    while len(rows) < M:
        x = rounded(torch.randn(E, generator=g) * 2.0, dtype)
        if sorted_gaps_ok(x.double(), k):
            rows.append(x)
    X = torch.stack(rows)
    w, ids = torch.topk(torch.softmax(X, dim=-1), k, dim=-1)
    if renormalize:
        w = w / w.sum(dim=-1, keepdim=True)
    # sanity: the order is the strict order of the logits
    ref_ids = torch.argsort(X.double(), dim=-1, descending=True)[:, :k]
    assert torch.equal(ids, ref_ids), name
    return {"kind": "softmax_topk", "name": name, "M": M, "E": E, "k": k, "dtype": dtype,
            "renormalize": renormalize, "logits": f9(X), "ids": ids.flatten().tolist(), "weights": f9(w)}


def grouped_torch(X, bias, n_group, topk_group, k, scoring, renormalize, scale):
    """vLLM grouped_topk (fp32). Returns weights, ids, and fp64 decision values."""
    M, E = X.shape
    scores = torch.sigmoid(X) if scoring == "sigmoid" else torch.softmax(X, dim=-1)
    if bias is not None:
        sfc = scores + bias.unsqueeze(0)
        group_scores = sfc.view(M, n_group, -1).topk(2, dim=-1)[0].sum(dim=-1)
    else:
        sfc = scores
        group_scores = scores.view(M, n_group, -1).max(dim=-1).values
    group_idx = torch.topk(group_scores, k=topk_group, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores)
    group_mask.scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(M, n_group, E // n_group).reshape(M, -1)
    tmp = sfc.masked_fill(~score_mask.bool(), float("-inf"))
    ids = torch.topk(tmp, k=k, dim=-1, sorted=True)[1]
    w = scores.gather(1, ids)
    if renormalize:
        w = w / w.sum(dim=-1, keepdim=True)
    return w * scale, ids, group_scores, tmp


def grouped_case(g, name, M, E, n_group, topk_group, k, scoring="sigmoid", bias_std=None, renormalize=True,
                 scale=1.0, dtype="fp32"):
    bias = None if bias_std is None else (torch.randn(E, generator=g) * bias_std).float()
    rows = []
    while len(rows) < M:
        x = rounded(torch.randn(1, E, generator=g) * 2.0, dtype)
        # decisions in fp64
        _, _, gs, tmp = grouped_torch(x.double(), None if bias is None else bias.double(), n_group, topk_group, k,
                                      scoring, renormalize, scale)
        ok = sorted_gaps_ok(gs[0], topk_group)
        finite = tmp[0][torch.isfinite(tmp[0])]
        ok = ok and sorted_gaps_ok(finite, k)
        if ok:
            rows.append(x[0])
    X = torch.stack(rows)
    w, ids, _, _ = grouped_torch(X, bias, n_group, topk_group, k, scoring, renormalize, scale)
    return {"kind": "grouped_topk", "name": name, "M": M, "E": E, "n_group": n_group, "topk_group": topk_group,
            "k": k, "scoring": scoring, "renormalize": renormalize, "scale": scale, "dtype": dtype,
            "bias": None if bias is None else f9(bias), "logits": f9(X), "ids": ids.flatten().tolist(),
            "weights": f9(w)}


def top1_case(g, name, M, K, E, dtype="bf16", shared_expert=False):
    W = rounded(torch.randn(K, E, generator=g) / math.sqrt(K), dtype)
    rows = []
    while len(rows) < M:
        x = rounded(torch.randn(K, generator=g), dtype)
        logit = x.double() @ W.double()
        if sorted_gaps_ok(logit, 1):
            rows.append(x)
    X = torch.stack(rows)
    logits = X.double() @ W.double()
    ids = torch.argmax(logits, dim=-1, keepdim=True)
    w = torch.sigmoid(logits.gather(1, ids)).float()
    if shared_expert:
        ids = torch.cat([ids, torch.full_like(ids, E)], dim=1)
        w = torch.cat([w, torch.ones_like(w)], dim=1)
    return {"kind": "sigmoid_top1", "name": name, "M": M, "K": K, "E": E, "dtype": dtype,
            "shared_expert": shared_expert, "x": f9(X), "w": f9(W), "ids": ids.flatten().tolist(),
            "weights": f9(w)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="data/routing/golden_routing.json")
    ap.add_argument("--seed", type=int, default=20261126)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    cases = [
        softmax_case(g, "softmax_mixtral_e8_k2", 16, 8, 2, renormalize=True),
        softmax_case(g, "softmax_qwen3_e128_k8", 8, 128, 8, renormalize=True),
        softmax_case(g, "softmax_e60_k4_bf16", 8, 60, 4, dtype="bf16"),
        softmax_case(g, "softmax_e3_k3", 5, 3, 3),
        softmax_case(g, "softmax_e1_k1", 3, 1, 1),
        softmax_case(g, "softmax_e512_k32", 2, 512, 32, renormalize=True),
        softmax_case(g, "softmax_e160_k6_fp16", 4, 160, 6, dtype="fp16"),
        grouped_case(g, "grouped_deepseek_v3", 8, 256, 8, 4, 8, "sigmoid", bias_std=0.1, scale=2.5),
        grouped_case(g, "grouped_deepseek_v3_bf16", 4, 256, 8, 4, 8, "sigmoid", bias_std=0.1, scale=2.5,
                     dtype="bf16"),
        grouped_case(g, "grouped_softmax_e64_g8_nobias", 6, 64, 8, 3, 6, "softmax", renormalize=False),
        grouped_case(g, "grouped_e160_g8_bias", 4, 160, 8, 2, 5, "sigmoid", bias_std=0.1),
        grouped_case(g, "grouped_e8_g4_nobias", 4, 8, 4, 2, 2, "sigmoid", renormalize=False),
        grouped_case(g, "grouped_softmax_e32_g4_bias", 4, 32, 4, 2, 4, "softmax", bias_std=0.02, scale=1.5),
        top1_case(g, "top1_e16_k256_bf16_shared", 5, 256, 16, "bf16", shared_expert=True),
        top1_case(g, "top1_e7_k100_fp16", 3, 100, 7, "fp16"),
        top1_case(g, "top1_e40_k64_bf16", 4, 64, 40, "bf16"),
    ]
    doc = {"generator": "data/routing/make_golden.py", "torch": torch.__version__, "seed": args.seed,
           "margin": MARGIN, "cases": cases}
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"make_golden: {len(cases)} cases -> {args.out} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
