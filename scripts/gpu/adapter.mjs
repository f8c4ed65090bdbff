/* global process, console */
// Prints, as one JSON line, the adapter that Dawn (the `webgpu` package) finds: what
// scripts/gpu/run.sh records as the GPU that --backend webgpu computes on.
const dawn = await import('webgpu');
Object.assign(globalThis, dawn.globals);
const gpu = dawn.create([]);
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) {
  console.log(JSON.stringify({ adapter: null }));
  process.exit(1);
}
const info = adapter.info ?? {};
console.log(
  JSON.stringify({
    adapter: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description },
    features: [...adapter.features].sort(),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  }),
);
process.exit(0);
