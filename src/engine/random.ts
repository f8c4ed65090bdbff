// Seeded pseudo-random numbers (PCG-XSH-RR 32): one independent stream per purpose (sampler,
// dropout, mixing, augmentation), each reproducible and serialisable for exact resumption.

/**
 * Every PCG stream id the code draws from, in one table: `new Random(seed, STREAMS.x)`. The values
 * are part of the results: changing one changes that stream's draws, so every seeded result
 * (the seed-0 runs, the golden trajectories, resumed runs) changes. Add a stream with a new value;
 * never renumber one. Two purposes may share a value only where they never run together.
 */
export const STREAMS = {
  // ---- a training run (src/train/, src/models/); seed = train.seed
  /** The class-balanced P×K sampler's draws (src/samplers/balanced_batch_sampler.ts). */
  sampler: 1,
  /** Initialisation of the metric model: backbone, embedding head, GNN, classifier (src/models/metric_model.ts). */
  init: 11,
  /** Initialisation of a base loss's proxies (Proxy-Anchor, ProxyNCA) not in the state dict yet. */
  lossProxies: 12,
  /** Initialisation of a baseline generator's parameters (daml-lite). */
  generatorInit: 13,
  /** GCA-HNG's mixing values (rand_seq), K(K−1) per generation. */
  mixing: 21,
  /** GCA-HNG's edge dropout. */
  edgeDropout: 22,
  /** One augmentation seed per training image (the paper's crop + flip, a flip, or a mirrored cached feature). */
  augmentationSeeds: 23,
  /** A baseline generator's own draws (Proxy Synthesis's λ, …). */
  generator: 24,
  /** The fixed probe batch of the hardness diagnostics (training is not affected). */
  probeBatch: 31,
  /** The probe's mixing values; seeded train.seed + i for the i-th value. */
  probeMixing: 32,
  // ---- the image pipeline (src/data/)
  /** 40 was the per-image seed stream of a prefetching loader, since removed: kept unused, not reused. */
  /** The crop and flip drawn from one image's own seed (src/data/transforms.ts trainDecision). */
  image: 41,
  // ---- commands and benchmarks that are not a training run
  /** `hardneg demo`: synthetic features, model initialisation, batches and mixing values. */
  demo: 0,
  /** `hardneg demo`: edge dropout (the demo runs no sampler, so sharing 1 with it is harmless). */
  demoDropout: 1,
  /** `hardneg generate --seed S`: the mixing values when --random is not given. */
  generateMixing: 3,
  /** bench/iteration.ts: the state dict and mixing values of the timed iteration. */
  benchIteration: 0,
  /** bench/iteration.ts: edge dropout of the timed iteration. */
  benchDropout: 7,
  /** bench/pipeline.ts: the pixels of the synthetic JPEGs. */
  benchImages: 7,
  /** bench/pipeline.ts: each epoch's image order. */
  benchOrder: 3,
  /** `hardneg data build-glyphs --seed S`: which characters become classes, and their split. */
  glyphClasses: 51,
  /** `hardneg data build-glyphs`: which fonts draw a character (one stream per character). */
  glyphFonts: 52,
  /** `hardneg data build-glyphs`: one image's shift, scale, rotation and stroke (one stream per image). */
  glyphJitter: 53,
} as const;

export type StreamName = keyof typeof STREAMS;

export class Random {
  private state: bigint;
  private readonly inc: bigint;

  constructor(seed: number, stream = 0) {
    this.inc = ((BigInt(stream) << 1n) | 1n) & 0xffffffffffffffffn;
    this.state = 0n;
    this.nextUint32();
    this.state = (this.state + BigInt.asUintN(64, BigInt(Math.floor(seed)))) & 0xffffffffffffffffn;
    this.nextUint32();
  }

  nextUint32(): number {
    const old = this.state;
    this.state = (old * 6364136223846793005n + this.inc) & 0xffffffffffffffffn;
    const xorshifted = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j] as T, a[i] as T];
    }
    return a;
  }

  getState(): { state: string; inc: string } {
    return { state: this.state.toString(), inc: this.inc.toString() };
  }

  setState(s: { state: string; inc: string }): void {
    this.state = BigInt(s.state);
    (this as unknown as { inc: bigint }).inc = BigInt(s.inc);
  }
}
