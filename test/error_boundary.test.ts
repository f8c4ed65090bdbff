// The error boundary of the command line: every error one line with the documented exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeError, EXIT } from '../src/cli/error_boundary.ts';
import { UserError } from '../src/errors.ts';
import { ConfigError } from '../src/train/config.ts';
import { SafetensorsError } from '../src/io/safetensors.ts';

const fsError = (code: string, path: string, syscall = 'write'): Error =>
  Object.assign(new Error(`${code}: something, ${syscall} '${path}'`), { code, path, syscall });

test('a user mistake is exit 2 with its own message; a config error too', () => {
  assert.deepEqual(describeError(new UserError('--out x: bad'), 'train'), { message: '--out x: bad', code: EXIT.usage });
  assert.deepEqual(describeError(new ConfigError("'train.epochs': expected a number"), 'train'), {
    message: "'train.epochs': expected a number",
    code: EXIT.usage,
  });
  assert.equal(describeError(new SafetensorsError('f: the header is null'), 'generate').code, EXIT.usage);
});

test("file-system errors name the path: exit 2 for the user's paths, 1 for a full disk", () => {
  assert.deepEqual(describeError(fsError('ENOENT', 'runs/x/config.json', 'open'), 'train'), {
    message: 'runs/x/config.json: no such file or folder (open)',
    code: EXIT.usage,
  });
  assert.deepEqual(describeError(fsError('EISDIR', 'out.npy', 'rename'), 'generate'), {
    message: 'out.npy: is a folder, expected a file (rename)',
    code: EXIT.usage,
  });
  assert.deepEqual(describeError(fsError('ENOSPC', 'runs/x/checkpoint.safetensors'), 'train'), {
    message: 'runs/x/checkpoint.safetensors: no space left on the device (write)',
    code: EXIT.failure,
  });
});

test('anything else is an internal error: one line, exit 1, long messages cut, never a source dump', () => {
  const minified = new Error(`${'var a=function(){return 1};'.repeat(2000)}\nmore`);
  const d = describeError(minified, 'train');
  assert.equal(d.code, EXIT.failure);
  assert.ok(!d.message.includes('\n'));
  assert.ok(d.message.length < 600, `${d.message.length} characters`);
  assert.match(d.message, /^internal error: var a=function/);
  assert.match(d.message, /please report it with the output of 'hardneg doctor'; HARDNEG_DEBUG=1 prints the stack\)$/);
  assert.match(describeError(new TypeError("Cannot read properties of null (reading 'x')"), 'generate').message, /^internal error: TypeError: Cannot read/);
  assert.match(describeError('a string', 'x').message, /^internal error: a string/);
});
