// `hardneg serve --index` on a MemoryIndex, for the signal test: the same serveIndex the command
// runs once openIndex has opened the index. argv[2]: milliseconds each search takes.
import { serveIndex } from '../../src/cli/commands/serve.ts';
import { MemoryIndex } from './memory_index.ts';

const index = new MemoryIndex({
  vectors: Float32Array.from([0, 0, 1, 0, 0, 1, 1, 1]),
  dim: 2,
  labels: ['a', 'b', 'c', 'd'],
  delayMs: Number(process.argv[2] ?? 0),
});
process.exitCode = await serveIndex(index, { port: 0, host: '127.0.0.1', imagesRoot: null });
