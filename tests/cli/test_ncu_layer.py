#!/usr/bin/env python3
"""scripts/ncu_layer.py's reading of ncu output (run by `meson test`, from the source root):
the committed H100 CSV (reports/h100-fe791bc/ncu) gives the figures its ncu_layer.json
recorded, and a CSV in scaled units with the optional L2 metric is read in base units."""
import json
import os
import sys

from checks import check, finish

sys.path.insert(0, "scripts")
import ncu_layer  # noqa: E402

RUN = "reports/h100-fe791bc/ncu"
with open(os.path.join(RUN, "ncu_layer.json")) as f:
    recorded = {(p["layer"], p["model"], p["M"]): p["stages"] for p in json.load(f)["points"]}
table = ncu_layer.model_sweeps.load()
for key in [("bf16", "qwen3_235b", 4096), ("bf16", "mixtral_8x7b", 16), ("fp8_tensor", "deepseek_v3", 4096)]:
    layer, model, M = key
    with open(os.path.join(RUN, f"{layer}-{model}-M{M}.csv")) as f:
        launches = ncu_layer.parse_raw_csv(f.read())
    flops = dict(zip((1, 2), ncu_layer.model_sweeps.stage_flops(ncu_layer.model_sweeps.model(table, model), M)))
    got = ncu_layer.summarize(launches, flops)
    check(f"{key}: 6 profiled launches read", len(launches) == 6, len(launches))
    for st in ("1", "2"):
        want = recorded[key][st]
        check(f"{key} stage {st}: duration, TFLOP/s, DRAM as recorded",
              all(got.get(st, {}).get(k) == want[k] for k in ("duration_us", "tflops", "dram_read_gb", "dram_pct")),
              (got.get(st), want))

# Units other than base (ms, Gbyte) are scaled; the L2 hit rate lands under its key.
csv = ('"ID","Kernel Name","gpu__time_duration.sum","dram__bytes_read.sum","dram__bytes_write.sum",'
       '"lts__t_sector_hit_rate.pct"\n'
       '"","","msecond","Gbyte","Mbyte","%"\n'
       '"0","void moe::fused_moe::dev::grouped_gemm_ws_kernel<moe::fused_moe::dev::Bf16WsOp<moe::fused_moe::dev::Bf16>,'
       ' 128, 256, 4, 2, 1>(P)","2","3","500","61.5"\n')
got = ncu_layer.summarize(ncu_layer.parse_raw_csv(csv), {1: 1e12, 2: 1e12})
e = got.get("2", {})
check("scaled units: stage 2 from the template argument", list(got) == ["2"], got)
check("scaled units: 2 ms, 3 GB read, 0.5 GB written, 1.75 TB/s, 0.5 PFLOP/s",
      (e.get("duration_us"), e.get("dram_read_gb"), e.get("dram_write_gb"), e.get("dram_tb_per_s"), e.get("tflops"))
      == (2000.0, 3.0, 0.5, 1.75, 500.0), e)
check("optional metric: L2 hit rate", e.get("l2_hit_pct") == 61.5, e)
md = ncu_layer.markdown([{"layer": "bf16", "model": "m", "M": 1, "stages": got}])
check("markdown: one row with the L2 column", md.count("\n") == 3 and "| 61.5 |" in md, md)
finish("cli_ncu_layer")
