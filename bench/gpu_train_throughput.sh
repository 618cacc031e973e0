#!/usr/bin/env bash
# One command on a GPU box (no network): install the carried wheels (bench/fetch_gpu_wheels.sh)
# into /tmp/site, print the stack, run bench/train_throughput.py. Extra args go to the bench,
# e.g. `--liger`, `--lengths results/train/ALL/token_lengths.json`, `--steps 8`.
# Results: $OUT/train_throughput.json (or ./train_throughput.json without $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:src"
else
    export PYTHONPATH="src"
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, transformers, trl, peft, datasets; print('torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__, '| peft', peft.__version__, '| datasets', datasets.__version__)"
python3 bench/train_throughput.py --out "${OUT:-.}/train_throughput.json" "$@"
