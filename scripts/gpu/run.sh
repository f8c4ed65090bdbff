#!/usr/bin/env bash
# The GPU run of issue 19, ready to go on a machine with an NVIDIA GPU and neither Node.js nor a
# network: unpacks .gpu-pack/pack.tar.xz (scripts/gpu/pack.sh) into a scratch folder, points Dawn
# at NVIDIA's Vulkan driver, and runs, each step under its own time limit (all within 10 minutes):
#   adapter   the adapter Dawn reports (webgpu only)
#   doctor    hardneg doctor --backend B --json (the public golden cases)
#   golden    test/golden_core + golden_trajectory on backend B (HARDNEG_TEST_BACKEND)
#   bench     npm run bench -- --case iteration-cub --backend B --json
#   train     hardneg train on the embedded fashion-mnist, 1 epoch of at most 20 iterations
# and writes $OUT/gpu-summary.json (./gpu-summary.json without $OUT): per step its command, exit
# code, seconds, key numbers and the error tail when it failed; nvidia-smi's output; the ICD found.
# Usage: bash scripts/gpu/run.sh [--backend webgpu|wasm|cpu] [--check] [--pack FILE]
#   --backend wasm  the same steps on the CPU (what can be tried without a GPU)
#   --check         unpack and look for the driver only: no step runs (cheap; test/gpu_script.test.ts)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
backend=webgpu
check=0
pack="$root/.gpu-pack/pack.tar.xz"
while [ $# -gt 0 ]; do
  case $1 in
    --backend) backend=$2; shift 2 ;;
    --check) check=1; shift ;;
    --pack) pack=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${OUT:-$PWD}
mkdir -p "$out"
summary="$out/gpu-summary.json"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
steps="$scratch/steps"
mkdir -p "$steps"
started=$(date +%s)

# Without Node nothing else can write JSON: this bash fallback records why.
fail_early() {
  printf '{"backend":"%s","mode":"%s","ok":false,"error":"%s","steps":[]}\n' "$backend" "$([ $check = 1 ] && echo check || echo run)" "$1" >"$summary"
  echo "run.sh: $1 (summary: $summary)" >&2
  exit 1
}

[ -f "$pack" ] || fail_early "pack $pack not found: run scripts/gpu/pack.sh and carry .gpu-pack"
tar -xJf "$pack" -C "$scratch" || fail_early "cannot unpack $pack"
# The unpacked node first on PATH: the device machines have none, and here it must not be the system one.
export PATH="$scratch/node/bin:$PATH"
# The working tree (as the device machine copies it) beside the carried packages.
work="$scratch/work"
mkdir -p "$work"
for d in bin src test bench configs data scripts package.json tsconfig.json; do cp -r "$root/$d" "$work/"; done
mv "$scratch/node_modules" "$work/node_modules"
# The Vulkan loader for Dawn, and NVIDIA's ICD wherever the driver put it.
export LD_LIBRARY_PATH="$scratch/vulkan${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
icd=""
for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json \
  /etc/vulkan/icd.d/nvidia_icd.x86_64.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then icd=$f; break; fi
done
if [ -n "$icd" ]; then
  # Both names: older loaders read VK_ICD_FILENAMES, 1.3.207 and later VK_DRIVER_FILES.
  export VK_ICD_FILENAMES="$icd" VK_DRIVER_FILES="$icd"
fi
{ nvidia-smi 2>&1 || echo "nvidia-smi: not available (exit $?)"; } >"$scratch/nvidia-smi.txt"

# step NAME SECONDS COMMAND...: runs in $work with a time limit, records exit code and seconds.
step() {
  local name=$1 limit=$2 t0 rc
  shift 2
  printf '%s\n' "$*" >"$steps/$name.cmd"
  t0=$(date +%s%N)
  set +e
  (cd "$work" && timeout --kill-after=10 "$limit" "$@") >"$steps/$name.out" 2>"$steps/$name.err"
  rc=$?
  set -e
  echo "$rc $((($(date +%s%N) - t0) / 1000000))" >"$steps/$name.rc"
  echo "run.sh: $name exit $rc" >&2
}

if [ $check = 0 ]; then
  if [ "$backend" = webgpu ] && [ -z "$icd" ]; then
    echo "run.sh: no NVIDIA Vulkan ICD found; the webgpu steps will fail and say so" >&2
  fi
  [ "$backend" = webgpu ] && step adapter 60 node scripts/gpu/adapter.mjs
  step doctor 120 node bin/hardneg doctor --backend "$backend" --json
  step golden 180 env HARDNEG_TEST_BACKEND="$backend" node --import tsx --test --test-reporter=tap test/golden_core.test.ts test/golden_trajectory.test.ts
  step bench 120 node --import tsx bench/run.ts --case iteration-cub --backend "$backend" --runs 2 --json
  step train 150 node bin/hardneg train --out "$scratch/run" --epochs 1 --backend "$backend" --set train.maxIterationsPerEpoch=20 --overwrite --json
fi
node "$root/scripts/gpu/summary.mjs" "$summary" "$steps" "$backend" "$check" "$icd" "$scratch/nvidia-smi.txt" "$scratch/pack.json" "$(($(date +%s) - started))"
