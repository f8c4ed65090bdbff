// Feeds one block of similarity scores (queries × gallery items, row-major) into the top-k lists.
import type { TopKStore } from './topk_store.ts';

export type TileScores = Float32Array | Float64Array;

/**
 * Optional tie rule "same label first": a gallery item with the query's label is stored under its
 * index, any other under index + galleryCount, so among equal scores positives rank first.
 */
export interface PositivesFirst {
  queryLabels: Int32Array;
  galleryLabels: Int32Array;
}

export interface TilePlace {
  /** Global index of the tile's first query row and first gallery column. */
  query0: number;
  gallery0: number;
  rows: number;
  cols: number;
}

/** Store key of gallery item j for query q (see PositivesFirst). */
export function tieKey(tie: PositivesFirst | null, q: number, j: number): number {
  if (tie === null || tie.queryLabels[q] === tie.galleryLabels[j]) return j;
  return j + tie.galleryLabels.length;
}

/** Undoes tieKey. */
export function keyToIndex(key: number, galleryCount: number): number {
  return key >= galleryCount ? key - galleryCount : key;
}

export function addColumnBias(tile: TileScores, place: TilePlace, bias: Float64Array): void {
  for (let r = 0; r < place.rows; r++) {
    const o = r * place.cols;
    for (let c = 0; c < place.cols; c++) tile[o + c] = (tile[o + c] as number) + (bias[place.gallery0 + c] as number);
  }
}

/**
 * Row r of the tile goes to store row storeRow0 + r; with skipSelf, gallery item i is skipped for
 * query i (self retrieval, textbook exclusion by index).
 */
export function offerTileRows(store: TopKStore, storeRow0: number, tile: TileScores, place: TilePlace, skipSelf: boolean, tie: PositivesFirst | null): void {
  const { rows, cols, query0, gallery0 } = place;
  const floors = store.floors;
  for (let r = 0; r < rows; r++) {
    const row = storeRow0 + r;
    const q = query0 + r;
    const selfCol = skipSelf ? q - gallery0 : -1;
    const o = r * cols;
    let floor = floors[row] as number;
    for (let c = 0; c < cols; c++) {
      const s = tile[o + c] as number;
      if (s < floor || c === selfCol) continue;
      store.offer(row, s, tieKey(tie, q, gallery0 + c));
      floor = floors[row] as number;
    }
  }
}

/**
 * The transposed use of a tile of a symmetric score matrix: column c is the scores of item
 * gallery0 + c against the items query0.., so it feeds store row gallery0 + c (stores indexed by
 * global row). Scanned row by row to stay cache-friendly.
 */
export function offerTileColumns(store: TopKStore, tile: TileScores, place: TilePlace, tie: PositivesFirst | null): void {
  const { rows, cols, query0, gallery0 } = place;
  const floors = store.floors;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const j = query0 + r;
    for (let c = 0; c < cols; c++) {
      const s = tile[o + c] as number;
      const row = gallery0 + c;
      if (s < (floors[row] as number)) continue;
      store.offer(row, s, tieKey(tie, row, j));
    }
  }
}
