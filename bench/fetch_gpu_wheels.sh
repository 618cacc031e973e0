#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the pure-Python wheels that bench/train_throughput.py
# needs on an offline GPU box whose image already has torch, triton, accelerate, tokenizers,
# safetensors, pyarrow and pandas (the H200 image: Python 3.12, torch 2.11, transformers 5.17,
# no trl/datasets). Versions are those of envs/gpu.yaml. About 16 MB, into .whl/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl \
    transformers==5.20.2 trl==1.16.0 peft==0.21.2 datasets==5.2.0 \
    dill==0.4.1 multiprocess==0.70.19 liger-kernel==0.8.5
ls -l .whl
