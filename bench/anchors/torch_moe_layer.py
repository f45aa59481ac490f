# Provenance: the project's anchor script ../shared/anchors/torch_moe_layer.py (given to
# the project with ../shared/anchors/README.md; copied so it travels with the repository
# to the GPU host and runs in the same call as bench_fused_moe). Added: these comment
# lines, the models and M values read from the "layer" sweep of configs/model_configs.json,
# and --gbench-json (gbench_format.py beside this file).
"""Side-by-side baseline for a MoE layer on one NVIDIA GPU, using only PyTorch.

Prints the device ceilings (copy and read bandwidth, dense bf16 / fp8 GEMM rate) and the
time of a full MoE layer through torch._grouped_mm (argsort + gather + two grouped GEMMs
+ SiLU*up + weighted index_add), graph-replayed, for the models and M values given.
Run it in the same run and on the same card as the kernel being compared.

  python3 torch_moe_layer.py [--models a,b] [--M 1,16] [--json out.json] [--gbench-json out.gbench.json]
  (default: the "layer" sweep)

--json writes the rows and ceilings as measured (bench/fused_moe_report.py reads it);
--gbench-json writes them as Google Benchmark JSON named as moe-harness's own layer
benchmarks, for `moe-harness report --bench ... --baseline torch=out.gbench.json`.
"""
import argparse, json, os, sys, torch, torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_sweeps
import gbench_format

TABLE = model_sweeps.load()
# (E, top_k, model_dim, inter_dim) of every model of configs/model_configs.json
MODELS = {m["name"]: (m["experts"], m["top_k"], m["model_dim"], m["inter_dim"]) for m in TABLE["models"]}


def time_graph(fn, reps=20, per=5):
    fn(); torch.cuda.synchronize()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        fn(); fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(per):
            fn()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(True), torch.cuda.Event(True)
        a.record(); g.replay(); b.record(); torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) / per)
    ts.sort()
    return ts[len(ts) // 2] * 1e3  # microseconds


def time_events(fn, reps=10):
    fn(); torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(True), torch.cuda.Event(True)
        a.record(); fn(); b.record(); torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2] * 1e3


def ceilings():
    x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
    copy = 2 * x.numel() / time_events(lambda: y.copy_(x)) / 1e6
    xf = x.view(torch.float32)
    read = xf.numel() * 4 / time_events(lambda: xf.sum()) / 1e6
    del x, y, xf
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
    bf16 = 2 * 8192 ** 3 / time_graph(lambda: a @ b, 10, 2) / 1e6
    one = torch.tensor(1.0, device="cuda")
    a8, b8 = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn).t().contiguous().t()
    fp8 = 2 * 8192 ** 3 / time_graph(lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16), 10, 2) / 1e6
    return dict(copy_TBps=copy, read_TBps=read, bf16_TFLOPs=bf16, fp8_TFLOPs=fp8)


def layer_rows(name, Ms):
    E, topk, H, I = MODELS[name]
    g = torch.Generator(device="cuda"); g.manual_seed(0)
    w1 = torch.randn(E, 2 * I, H, device="cuda", dtype=torch.bfloat16, generator=g) / H ** 0.5
    w2 = torch.randn(E, H, I, device="cuda", dtype=torch.bfloat16, generator=g) / I ** 0.5
    rows = []
    for M in Ms:
        hs = torch.randn(M, H, device="cuda", dtype=torch.bfloat16, generator=g)
        tw, tid = torch.topk(torch.softmax(torch.randn(M, E, device="cuda", generator=g), -1), topk, -1)

        def layer():
            flat = tid.flatten()
            order = flat.argsort()
            counts = torch.zeros(E, dtype=torch.long, device="cuda").scatter_add_(0, flat, torch.ones_like(flat))
            offs = torch.cumsum(counts, 0).to(torch.int32)
            tok = order // topk
            gu = torch._grouped_mm(hs[tok], w1.transpose(1, 2), offs=offs)
            o = torch._grouped_mm(F.silu(gu[:, :I]) * gu[:, I:], w2.transpose(1, 2), offs=offs)
            out = torch.zeros(M, H, device="cuda", dtype=torch.float32)
            return out.index_add_(0, tok, o.float() * tw.flatten()[order, None])

        hit = int(torch.unique(tid).numel())
        rows.append(dict(model=name, M=M, experts_hit=hit, torch_grouped_mm_us=time_graph(layer),
                         weight_bytes_read=hit * 3 * I * H * 2, flops=M * topk * 6 * I * H))
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--models", default=",".join(model_sweeps.sweep_models(TABLE, "layer")))
    p.add_argument("--M", default=",".join(str(M) for M in model_sweeps.sweep_tokens(TABLE, "layer")))
    p.add_argument("--json")
    p.add_argument("--gbench-json", help="the rows as Google Benchmark JSON with moe-harness's benchmark names")
    a = p.parse_args()
    out = dict(device=torch.cuda.get_device_name(), ceilings=ceilings(), rows=[])
    print(json.dumps(out["ceilings"]), flush=True)
    for m in a.models.split(","):
        out["rows"] += layer_rows(m, [int(x) for x in a.M.split(",")])
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)
    if a.gbench_json:
        json.dump(gbench_format.to_gbench(out["rows"], out["ceilings"], out["device"]), open(a.gbench_json, "w"), indent=1)
