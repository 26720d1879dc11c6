#!/usr/bin/env bash
# The prepared GPU run: mtrec's CUDA tests, then `mtrec bench` on the GPU, into one folder.
#
#   benchmarks/gpu/run.sh OUT_DIR
#
# Runs mtrec from this source tree with only its core dependencies (torch, numpy, pandas, tqdm,
# safetensors; transformers / sentence-transformers are used when present), no Jupyter and no
# network, as on the reference GPU image (Python 3.12, torch 2.11 + CUDA 13). Writes
#   OUT_DIR/env.txt           device, driver, versions
#   OUT_DIR/pytest.log        `pytest -m gpu` (forward/backward on CUDA, bf16 autocast, timing)
#   OUT_DIR/bench.log         `mtrec bench --devices cuda` (fp32 and bf16 autocast, batch sizes up
#                             to where they fit, the bf16 matmul and copy ceilings of this GPU)
#   OUT_DIR/results/*.csv     throughput.csv and goals.csv rows of this run only
# and finishes in under 8 minutes on an H200 (each step has its own time limit), so a second try
# fits in the same sitting. Merge the rows into benchmarks/results/ with
#   python -m mtrec.cli bench --merge OUT_DIR/results   (upserts the rows, then regenerates the report)
set -uo pipefail
out=${1:?usage: benchmarks/gpu/run.sh OUT_DIR}
cd "$(dirname "$0")/../.."
mkdir -p "$out/results"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MTREC_OFFLINE=1 HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0 MPLBACKEND=Agg
python=${PYTHON:-python3}

{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    "$python" -c 'import mtrec, sys, torch; print(sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.version.cuda, "mtrec", mtrec.__version__, torch.cuda.get_device_name())'
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

timeout 150 "$python" -m pytest -p no:cacheprovider -q -m gpu tests/gpu 2>&1 | tee "$out/pytest.log"
tests=${PIPESTATUS[0]}

timeout 390 "$python" -m mtrec.cli bench --devices cuda --out "$out/results" --no-report \
    2>&1 | tee "$out/bench.log"
bench=${PIPESTATUS[0]}

echo "pytest exit $tests, bench exit $bench" | tee -a "$out/env.txt"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
