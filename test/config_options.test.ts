// loss.options and method.options: checked against the registry entry's own schema, unknown keys
// refused naming the key, recorded in the configuration, defaults unchanged when absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, applyOverrides, parseConfig } from '../src/train/config.ts';

const parse = (overrides: string[]) => parseConfig(applyOverrides({}, overrides), 'test');

test('options from --set reach the configuration as given; none given is {} (existing config.json files still parse)', () => {
  const c = parse(['train.method=ee', 'loss.base=triplet', 'loss.options.margin=0.2', 'loss.options.mining=batch-hard', 'method.options.innerPoints=3']);
  assert.deepEqual(c.loss.options, { margin: 0.2, mining: 'batch-hard' });
  assert.deepEqual(c.method.options, { innerPoints: 3 });
  // A configuration written before these keys existed: no loss.options, no method section.
  const old = parseConfig({ train: { method: 'none' }, loss: { base: 'triplet' } }, 'old config.json');
  assert.deepEqual(old.loss.options, {});
  assert.deepEqual(old.method, { options: {} });
  // The resolved configuration (what config.json records) carries them and parses back to itself.
  assert.deepEqual(parseConfig(JSON.parse(JSON.stringify(c)), 'config.json'), c);
  assert.deepEqual(parse(['train.method=symm', 'method.options.npairRule=paper']).method.options, { npairRule: 'paper' });
  assert.deepEqual(parse(['train.method=none', 'loss.base=proxy-nca', 'loss.options.softmaxScale=10']).loss.options, { softmaxScale: 10 });
  assert.deepEqual(parse(['loss.base=proxy-anchor', 'loss.options.alpha=16']).loss.options, { alpha: 16 }, 'GCA-HNG on Proxy-Anchor takes its options');
});

test('unknown option keys are refused naming the key and the entry, wrong values naming the key', () => {
  const refuse = (overrides: string[], words: RegExp) => {
    assert.throws(
      () => parse(overrides),
      (e: unknown) => e instanceof ConfigError && words.test(e.message),
      `${overrides.join(' ')} should be refused with ${words}`,
    );
  };
  refuse(
    ['train.method=none', 'loss.base=triplet', 'loss.options.marg=0.2'],
    /'loss\.options\.marg': loss triplet has no option 'marg' \(its options: margin, mining/,
  );
  refuse(['train.method=ee', 'method.options.inner=3'], /'method\.options\.inner': method ee has no option 'inner' \(its options: innerPoints/);
  refuse(['train.method=none', 'method.options.alpha=1'], /'method\.options\.alpha': method none has no option 'alpha' \(it takes none\)/);
  refuse(['train.method=none', 'loss.base=triplet', 'loss.options.mining=hardest'], /'loss\.options\.mining':/);
  refuse(['train.method=ee', 'method.options.innerPoints=0'], /'method\.options\.innerPoints':/);
  refuse(['train.method=hdml-lite', 'method.options.alpha="ninety"'], /'method\.options\.alpha':/);
  // GCA-HNG's own settings are loss.*; on N-pair its J_m is the official one with fixed constants.
  refuse(['method.options.alpha=3'], /'method\.options': gca-hng takes no method options/);
  refuse(['loss.options.l2Reg=0.002'], /'loss\.options': gca-hng on npair uses the official N-pair J_m/);
  // The authors' name of a simplified method says what exists instead.
  refuse(['train.method=hdml'], /'train\.method': the official HDML .* 'hdml-lite'/);
  refuse(['train.method=daml'], /'train\.method': DAML as published .* 'daml-lite'/);
});
