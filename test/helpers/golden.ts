// Where the golden fixtures produced by the official implementation live (test/fixtures/golden, format in its README).
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'golden');
