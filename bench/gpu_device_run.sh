#!/usr/bin/env bash
# One prepared call on a CUDA machine with no network (bench/README-style: prints tables last).
#
#   bash bench/gpu_device_run.sh CARRY OUT
#
# CARRY holds what the machine cannot download: whl/ (Verity's dependencies for its Python),
# llama_cpp_python-*.tar.xz (a trimmed sdist: models, docs and other backends removed) and
# hdr/*.hdr.xz (GGUF headers kept by bench/gguf_synth.py: the embedded model's, R1's tokenizer).
# Steps: build llama-cpp-python with CUDA for this GPU only; diagnose the import abort of issue
# 15; `verity run` with full offload; bench/gpu_headline.py; bench/throughput.py. Every step has
# its own time limit and log under OUT, so one failure does not cost the others.
set -u
CARRY=${1:?carry dir}
OUT=${2:?out dir}
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1
SITE=/tmp/site
step() { echo "== $(date +%T) $*"; }
mkdir -p "$SITE" /tmp/hdr

step machine
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,compute_cap --format=csv \
  | tee "$OUT/gpu.txt"
python3 --version; nproc
python3 -m pip show pandas pyarrow numpy 2>/dev/null | grep -E "^(Name|Version)"

step wheels  # REHEARSAL=1: the current python's packages and llama_cpp, no build
[ -n "${REHEARSAL:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$SITE" "$CARRY"/whl/*.whl || exit 1
export PYTHONPATH="$SITE:$PWD"
for h in "$CARRY"/hdr/*.hdr.xz; do xz -dc "$h" > "/tmp/hdr/$(basename "$h" .xz)"; done

step "synthetic models, in the background while llama.cpp builds"
( python3 bench/gguf_synth.py clone /tmp/hdr/qwen05.hdr /tmp/q05.gguf \
  && python3 bench/gguf_synth.py qwen2 /tmp/hdr/r1.hdr /tmp/r1-32b.gguf ) > "$OUT/synth.log" 2>&1 &
synth=$!

step "build llama-cpp-python (GGML_CUDA=on, sm_90 only)"
tar xJf "$CARRY"/llama_cpp_python-*.tar.xz -C /tmp
started=$SECONDS
[ -n "${REHEARSAL:-}" ] || CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAVA_BUILD=OFF" \
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
  timeout 420 python3 -m pip install --no-index --no-deps --no-build-isolation --no-cache-dir \
  --target "$SITE" /tmp/llama_cpp_python-0.3.36 > "$OUT/build.log" 2>&1
echo "build exit $? in $((SECONDS - started)) s"; tail -3 "$OUT/build.log"

crashed=""
probe() {  # name, python source: exit code and last lines, never fatal
  timeout 60 python3 -c "$2" > "$OUT/probe-$1.log" 2>&1
  local code=$?
  echo "probe $1: exit $code $(tail -c 300 "$OUT/probe-$1.log" | tr '\n' ' ')"
  if [ "$code" -ge 128 ] && [ "$code" -ne 124 ]; then crashed="$crashed $1"; fi
}
step "issue 15: which import aborts next to the CUDA build"
probe offload "import llama_cpp; print('gpu offload', llama_cpp.llama_supports_gpu_offload())"
probe llama-then-sqlite_utils "import llama_cpp; import sqlite_utils; print('ok')"
probe sqlite_utils-then-llama "import sqlite_utils; import llama_cpp; print('ok')"
probe llama-then-pandas "import llama_cpp; import pandas; print('ok')"
probe llama-then-pyarrow "import llama_cpp; import pyarrow; print('ok')"
probe pandas-alone "import pandas; print('ok', pandas.__version__)"
probe llama-then-numpy-sqlite3 "import llama_cpp, numpy, sqlite3; print('ok')"
probe verity "import llama_cpp, verity, sys; from verity.trace.store import TraceStore; \
TraceStore('/tmp/probe.db'); print('ok, pandas imported:', 'pandas' in sys.modules)"
LIBS="import re; print(*sorted({l.split(None, 5)[5].strip() for l in open('/proc/self/maps') \
if len(l.split(None, 5)) == 6 and re.search(r'libstdc|libgomp|libsqlite|libcud|libcublas|libggml|\
libllama|libgcc_s|arrow|jemalloc|mimalloc|libz', l)}), sep='\\n')"
probe maps-llama "import llama_cpp; $LIBS"
probe maps-pandas "import pandas; $LIBS"
cat "$OUT/probe-maps-llama.log" "$OUT/probe-maps-pandas.log"
echo "crashed:${crashed:- none}"
if [[ "$crashed" == *llama-then-pandas* ]]; then
  timeout 90 cuda-gdb -batch -ex run -ex bt --args python3 -c "import llama_cpp; import pandas" \
    > "$OUT/backtrace-pandas.log" 2>&1
  grep -E "^#[0-9]+ " "$OUT/backtrace-pandas.log" | head -25
fi

step "verity run, full offload (synthetic weights: the answer is noise, the run and trace are real)"
timeout 120 python3 -m verity run --model /tmp/q05.gguf --n-gpu-layers -1 --flash-attn \
  --max-steps 2 --max-tokens 48 --trace-db "$OUT/trace.db" "What is 2 + 3?" > "$OUT/run.log" 2>&1
echo "verity run exit $?"; tail -5 "$OUT/run.log"
timeout 60 python3 -m verity logs --trace-db "$OUT/trace.db" 2>&1 | tail -3
timeout 120 python3 - > "$OUT/offload.log" 2>&1 <<'EOF'
import subprocess
from verity import LlamaCppModel, ModelSettings
def used():
    return subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout.strip()
before = used()
model = LlamaCppModel("/tmp/q05.gguf", ModelSettings(n_gpu_layers=-1, flash_attn=True))
model.llama
print("VRAM before", before, "after loading the 0.5B with n_gpu_layers=-1:", used())
model.close()
EOF
tail -2 "$OUT/offload.log"

step "headline: R1-Distill-Qwen-32B shapes, Q4_K_M, flash attention, full offload"
wait $synth; tail -2 "$OUT/synth.log"
timeout 300 python3 bench/gpu_headline.py --tokenizer /tmp/hdr/r1.hdr --model /tmp/r1-32b.gguf \
  --repeats 2 --decode 64 --json-out "$OUT/headline.json" > "$OUT/headline.log" 2>&1
echo "headline exit $?"; tail -4 "$OUT/headline.log"

step "throughput: embedded model's shapes (synthetic weights), full offload, flash attention"
timeout 200 python3 bench/throughput.py --model /tmp/q05.gguf --n-gpu-layers -1 --flash-attn \
  --repeats 2 > "$OUT/throughput.log" 2>&1
echo "throughput exit $?"; tail -7 "$OUT/throughput.log"
step done
