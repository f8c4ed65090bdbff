// GCA-HNG and its ablations (docs/ablations.md, docs/algorithm.md §6.9), as switches on the
// official iteration (QUIRK n: entry n of docs/algorithm.md §11):
//   gca-hng           the official method;
//   gca-hng-nosyn     J_syn off: J_metric = J_m + J_gce (the generator still trains);
//   gca-hng-nogce     J_gce does not reach the backbone: pass 1's GNN sees sg(z), so J_gce only
//                     trains the GNN (the official code lets it train the embedding too, QUIRK 5);
//   gca-hng-flat      the learned per-channel weights are replaced, in both generations, by one
//                     scalar per pair (their mean over channels): HDML-style interpolation with a
//                     learned per-pair weight;
//   gca-hng-noglobal  no message passing: the GNN has no layers and the edge weights come from a
//                     per-pair MLP on the pair's own correlation features, σ(fc(BN(GELU(W·A⁰ + b)))).

export const GCA_METHODS = ['gca-hng', 'gca-hng-nosyn', 'gca-hng-nogce', 'gca-hng-flat', 'gca-hng-noglobal'] as const;
export type GcaMethod = (typeof GCA_METHODS)[number];

export interface GcaVariant {
  /** J_syn is part of J_metric. */
  syn: boolean;
  /** J_gce's gradient reaches the embedding through the GNN's inputs. */
  gceToBackbone: boolean;
  /** One weight per pair instead of per channel in the generation. */
  flat: boolean;
  /** Message passing (L GNN layers); false: a per-pair MLP. */
  global: boolean;
}

export const OFFICIAL_VARIANT: GcaVariant = { syn: true, gceToBackbone: true, flat: false, global: true };

export function variantOf(method: GcaMethod): GcaVariant {
  switch (method) {
    case 'gca-hng':
      return OFFICIAL_VARIANT;
    case 'gca-hng-nosyn':
      return { ...OFFICIAL_VARIANT, syn: false };
    case 'gca-hng-nogce':
      return { ...OFFICIAL_VARIANT, gceToBackbone: false };
    case 'gca-hng-flat':
      return { ...OFFICIAL_VARIANT, flat: true };
    case 'gca-hng-noglobal':
      return { ...OFFICIAL_VARIANT, global: false };
  }
}

export function isGcaMethod(m: string): m is GcaMethod {
  return (GCA_METHODS as readonly string[]).includes(m);
}
