#!/usr/bin/env bash
# Prepares what scripts/gpu/run.sh carries to a GPU machine that has neither Node.js nor a network:
# one compressed archive (default .gpu-pack/pack.tar.xz, git-ignored) holding
#   node/bin/node     this machine's Node binary (process.execPath)
#   node_modules/     the project's runtime packages, less what a GPU run never loads (onnxruntime,
#                     LanceDB, the linters and compilers, source maps, browser bundles), plus the
#                     WebGPU backend (@tensorflow/tfjs-backend-webgpu) and the Dawn bindings
#                     (webgpu, linux-x64 binary only) that --backend webgpu loads (src/engine/backend.ts)
#   vulkan/           Debian's libvulkan1 (the Vulkan loader libvulkan.so.1), which Dawn dlopens
# The device machines carry at most 64 MiB of ignored paths: the size is printed and checked.
# Usage: bash scripts/gpu/pack.sh [OUT_DIR]   (needs the npm registry and Debian's archive for
# the two WebGPU packages and libvulkan1 the first time; later runs use OUT_DIR/cache)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-"$root/.gpu-pack"}
limit_mib=64
mkdir -p "$out/cache"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The Node binary that runs this project here; Node 20 is what the project supports.
node_bin=$(node -p 'process.execPath')
mkdir -p "$stage/node/bin"
cp "$node_bin" "$stage/node/bin/node"

# Runtime packages: the whole tree (dependencies of dependencies included), less the heavy ones
# that no step of run.sh imports.
cp -rL "$root/node_modules" "$stage/node_modules" 2>/dev/null || cp -r "$root/node_modules/." "$stage/node_modules"
for heavy in onnxruntime-node onnxruntime-common @lancedb apache-arrow typescript dpdm playwright-core \
  prettier eslint @eslint @typescript-eslint typescript-eslint @swc core-js @types .cache; do
  rm -rf "${stage:?}/node_modules/$heavy"
done
# Source maps, TypeScript sources and browser-only bundles of TensorFlow.js: Node loads dist/*.js
# through each package's "main"/"exports" and none of these.
find "$stage/node_modules" -name '*.map' -delete
find "$stage/node_modules/@tensorflow" \( -name '*.min.js' -o -name '*.es2017.js' -o -name '*.fesm.js' -o -name '*.fesm.min.js' -o -name '*.d.ts' \) -delete
rm -rf "$stage"/node_modules/@tensorflow/*/src

# The WebGPU backend and the Dawn bindings, from the npm registry unless installed already.
fetch_pkg() { # name version dest
  local name=$1 version=$2 dest=$3 tgz
  if [ -f "$root/node_modules/$name/package.json" ]; then return 0; fi
  tgz="$out/cache/$(echo "$name" | tr -d '@' | tr '/' '-')-$version.tgz"
  if [ ! -f "$tgz" ]; then (cd "$out/cache" && npm pack --silent "$name@$version" >/dev/null); fi
  mkdir -p "$dest"
  tar xzf "$tgz" -C "$dest" --strip-components=1
}
fetch_pkg @tensorflow/tfjs-backend-webgpu 4.22.0 "$stage/node_modules/@tensorflow/tfjs-backend-webgpu"
fetch_pkg webgpu 0.6.2 "$stage/node_modules/webgpu"
fetch_pkg @webgpu/types 0.1.72 "$stage/node_modules/@webgpu/types"
# Dawn ships binaries for every platform; the GPU machines are linux x64.
find "$stage/node_modules/webgpu/dist" -mindepth 1 -maxdepth 1 -type d ! -name linux-x64 -exec rm -rf {} +
find "$stage/node_modules/@tensorflow/tfjs-backend-webgpu" \( -name '*.min.js' -o -name '*.es2017.js' -o -name '*.map' \) -delete
rm -rf "$stage/node_modules/@tensorflow/tfjs-backend-webgpu/src"

# The Vulkan loader (the NVIDIA driver brings the ICD, not necessarily the loader).
deb=$(ls "$out"/cache/libvulkan1_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then (cd "$out/cache" && apt-get download libvulkan1 >/dev/null); deb=$(ls "$out"/cache/libvulkan1_*.deb | head -n 1); fi
dpkg-deb -x "$deb" "$stage/vulkan-deb"
mkdir -p "$stage/vulkan"
cp -a "$stage"/vulkan-deb/usr/lib/*/libvulkan.so.1* "$stage/vulkan/"
rm -rf "$stage/vulkan-deb"

"$stage/node/bin/node" -e 'console.log(JSON.stringify({node: process.version, built: new Date().toISOString()}))' >"$stage/pack.json"
tar -C "$stage" -cf - node node_modules vulkan pack.json | xz -T1 -6 >"$out/pack.tar.xz.tmp"
mv "$out/pack.tar.xz.tmp" "$out/pack.tar.xz"
size=$(stat -c %s "$out/pack.tar.xz")
echo "pack: $out/pack.tar.xz $((size / 1048576)) MiB ($size bytes; limit ${limit_mib} MiB)"
if [ "$size" -gt $((limit_mib * 1048576)) ]; then
  echo "pack: over the ${limit_mib} MiB that a device run carries" >&2
  exit 1
fi
