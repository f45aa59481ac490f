"""bench/anchors/gbench_format.py: the torch anchor's rows as Google Benchmark
JSON named as our own layer benchmarks. Fake timings; torch is not needed."""
import json
import os
import re
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)
sys.path.insert(0, os.path.join(ROOT, "bench", "anchors"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import gbench_format  # noqa: E402
import model_sweeps  # noqa: E402

CEILINGS = {"copy_TBps": 4.2, "read_TBps": 4.36, "bf16_TFLOPs": 797.9, "fp8_TFLOPs": 1467.5}


def fake_rows():
    table = model_sweeps.load()
    return [{"model": m, "M": M, "experts_hit": 2, "torch_grouped_mm_us": 100.0 + M, "weight_bytes_read": 1000 * M,
             "flops": 2000 * M}
            for m in model_sweeps.sweep_models(table, "layer") for M in model_sweeps.sweep_tokens(table, "layer")]


def test_names_are_ours():
    # bench/bench_fused_moe.cpp registers BM_fused_moe_<part>/<model>/M:<M>, "layer" among the parts.
    src = open(os.path.join(ROOT, "bench", "bench_fused_moe.cpp")).read()
    assert 'fmt::format("BM_fused_moe_{}/{}/M:{}", parts[pi], pt.model.name, pt.M)' in src
    assert re.search(r'parts\[\]\s*=\s*\{"layer"', src)
    assert gbench_format.benchmark_name("deepseek_v3", 64) == "BM_fused_moe_layer/deepseek_v3/M:64/manual_time"
    with pytest.raises(ValueError, match="fp8"):
        gbench_format.benchmark_name("deepseek_v3", 64, "fp8")


def test_document():
    rows = fake_rows()
    doc = json.loads(json.dumps(gbench_format.to_gbench(rows, CEILINGS, "NVIDIA H200", date="2026-12-05")))
    ctx = doc["context"]
    assert ctx["moe_device"] == "NVIDIA H200"
    assert ctx["moe_read_gbps"] == "4360.0"
    assert ctx["moe_bf16_tflops"] == "797.9"
    assert ctx["moe_fp8_tflops"] == "1467.5"
    assert ctx["date"] == "2026-12-05"
    b = doc["benchmarks"]
    assert len(b) == len(rows)
    for e, r in zip(b, rows):
        assert e["name"] == e["run_name"] == f"BM_fused_moe_layer/{r['model']}/M:{r['M']}/manual_time"
        assert e["real_time"] == e["us"] == r["torch_grouped_mm_us"]
        assert e["time_unit"] == "us" and e["run_type"] == "iteration"
        assert e["M"] == r["M"]
        assert f"model={r['model']}" in e["label"]
        assert e["TFLOPs"] == pytest.approx(r["flops"] / (r["torch_grouped_mm_us"] * 1e-6) / 1e12)
    assert len({e["name"] for e in b}) == len(b)


def test_missing_ceilings_and_bad_rows():
    doc = gbench_format.to_gbench([{"model": "m", "M": 1, "us": 5.0}], {"bf16_TFLOPs": None}, "dev")
    assert "moe_fp8_tflops" not in doc["context"] and "moe_bf16_tflops" not in doc["context"]
    assert doc["benchmarks"][0]["real_time"] == 5.0
    with pytest.raises(ValueError, match="not positive"):
        gbench_format.to_gbench([{"model": "m", "M": 1, "us": 0.0}], {}, "dev")


def test_committed_conversion_is_current():
    # reports/h200-b8c48d9/torch_moe_layer.gbench.json is this module's output for the run's --json file.
    run_dir = os.path.join(ROOT, "reports", "h200-b8c48d9")
    run = json.load(open(os.path.join(run_dir, "torch_moe_layer.json")))
    want = gbench_format.to_gbench(run["rows"], run["ceilings"], run["device"], date="2026-11-26")
    assert json.load(open(os.path.join(run_dir, "torch_moe_layer.gbench.json"))) == want
