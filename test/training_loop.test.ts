// The training loop around the iteration (docs/algorithm.md §6.7, §6.8): evaluation inside
// training, the learning-rate schedules over epochs, the J_avg/J_gen epoch means, warm-up and
// BatchNorm freezing, and the evaluation cadence. Every expected value is worked out by hand from
// the formulas in the docs, never read from the code under test. Runs are tiny (a few 6×6 images,
// one iteration per epoch) so the file stays fast.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { featureIdentityBackbone } from '../src/models/onnx_backbone.ts';
import { createMetricModel } from '../src/models/metric_model.ts';
import { HEAD_LINEAR } from '../src/models/embedding_head.ts';
import { evaluateModel } from '../src/train/evaluate_model.ts';
import type { ImageSplit } from '../src/train/image_split.ts';

/** An in-memory split of feature vectors stored as [n, 1, 1, D] "images" (for featureIdentityBackbone). */
function featureSplit(rows: number[][], labels: number[], queryCount?: number): ImageSplit {
  const D = (rows[0] as number[]).length;
  return {
    size: rows.length,
    labels: Int32Array.from(labels),
    numClasses: new Set(labels).size,
    queryCount,
    images: async (idx) =>
      tf.tensor4d(
        idx.flatMap((i) => rows[i] as number[]),
        [idx.length, 1, 1, D],
      ),
  };
}

test('In-Shop evaluation inside training follows eval.semantics (official: ties go to the positives)', async () => {
  // One query (class 0) and a gallery whose first item is a negative (class 1) identical to the
  // positive (class 0) that follows it. The head is the identity (BN1d in eval mode with running
  // mean 0 and variance 1 only scales every row by the same factor), so the query ties with both.
  // textbook: ties by index, the negative ranks first: Recall@1 = 0.
  // official (§7.3): a hit iff fewer than 1 negative scores strictly above the best positive: 1.
  const D = 2;
  const m = createMetricModel(featureIdentityBackbone(D), { P: 2, K: 2, D, H: 1, L: 0, C: 2 }, 0, false, false);
  const eye = tf.tensor2d([
    [1, 0],
    [0, 1],
  ]);
  m.sd.set(`${HEAD_LINEAR}.weight`, eye);
  m.sd.set(`${HEAD_LINEAR}.bias`, tf.zeros([D]));
  const split = featureSplit(
    [
      [1, 0.5], // query, class 0
      [1, 0.5], // gallery 0, class 1
      [1, 0.5], // gallery 1, class 0
      [-1, 0.3], // gallery 2, class 1
    ],
    [0, 1, 0, 1],
    1,
  );
  const recall1 = async (semantics: 'textbook' | 'official') =>
    (await evaluateModel(m, split, 1, { ks: [1], semantics, nmi: false, seed: 0 })).record.recall['1'];
  assert.equal(await recall1('textbook'), 0);
  assert.equal(await recall1('official'), 1);
  eye.dispose();
  m.sd.dispose();
});
