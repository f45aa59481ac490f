"""The models and sweeps of configs/model_configs.json for the Python scripts.

The C++ loader (harness/src/model_config.cpp) validates the file; this reads it
with the json module and expands a sweep the same way (model-major; with
"pairwise", model i at M[i] only).
"""
import json
import os

DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "configs", "model_configs.json")


def load(path=None):
    with open(path or DEFAULT_PATH) as f:
        return json.load(f)


def model(table, name):
    for m in table["models"]:
        if m["name"] == name:
            return m
    raise SystemExit(f"model_configs: unknown model '{name}' (known: {', '.join(m['name'] for m in table['models'])})")


def sweep(table, name):
    s = table.get("sweeps", {}).get(name)
    if not isinstance(s, dict):
        raise SystemExit(f"model_configs: sweeps.{name}: missing")
    return s


def sweep_models(table, name):
    return list(dict.fromkeys(sweep(table, name)["models"]))


def sweep_tokens(table, name):
    return list(sweep(table, name)["M"])


def points(table, name):
    s = sweep(table, name)
    if s.get("pairwise"):
        return list(zip(s["models"], s["M"]))
    return [(m, M) for m in s["models"] for M in s["M"]]


def stage_flops(m, M):
    """FLOPs of one fused MoE layer of model m at M tokens: (stage 1, gate and up
    projections; stage 2, down projection); their sum is 6*M*top_k*inter*model_dim."""
    rows = M * m["top_k"]
    return (2.0 * rows * m["model_dim"] * 2 * m["inter_dim"], 2.0 * rows * m["inter_dim"] * m["model_dim"])
