// Seeded pseudo-random numbers (PCG-XSH-RR 32): one independent stream per purpose (sampler,
// dropout, mixing, augmentation), each reproducible and serialisable for exact resumption.

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
    const xorshifted = Number(((old >> 18n) ^ old) >> 27n & 0xffffffffn);
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
