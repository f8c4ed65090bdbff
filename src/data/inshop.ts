// In-Shop Clothes Retrieval (DeepFashion) as distributed: --data-root is the folder holding
//
//   list_eval_partition.txt   line 1: the number of rows; line 2: 'image_name item_id
//                             evaluation_status'; then e.g.
//                             img/WOMEN/Dresses/id_00000002/02_1_front.jpg  id_00000002  train
//                             (the archive has it as Eval/list_eval_partition.txt: either place works)
//   img/                      the images (Img/img.zip extracted), at the listed paths; when DIR has
//                             no img/ but Img/img/, the paths are read under Img/
//
// Splits by evaluation_status (docs/algorithm.md §8): train (25,882 images, 3,997 items), query (14,218)
// and gallery (12,612; 3,985 items). The own class identifier is the item id (id_XXXXXXXX),
// ordered by its number; query and gallery share one numbering.
import { join, resolve } from 'node:path';
import {
  type BenchmarkListing,
  type ClassId,
  type DatasetProblem,
  isDir,
  isFile,
  type ListedImage,
  parseId,
  readTable,
  relPath,
  requireLayout,
} from './listing.ts';

export const INSHOP_SPLITS = ['train', 'query', 'gallery'] as const;
export const INSHOP_HEADER = ['image_name', 'item_id', 'evaluation_status'] as const;

export function listInShop(rootArg: string): BenchmarkListing {
  const root = resolve(rootArg);
  requireLayout(root, 'In-Shop Clothes Retrieval', [
    ['list_eval_partition.txt', 'Eval/list_eval_partition.txt'],
    ['img/', 'Img/img/'],
  ]);
  const file = isFile(join(root, 'list_eval_partition.txt')) ? 'list_eval_partition.txt' : 'Eval/list_eval_partition.txt';
  const base = isDir(join(root, 'img')) ? '' : 'Img';
  const problems: DatasetProblem[] = [];
  const rows = readTable(root, file);
  const count = rows[0];
  const header = rows[1];
  let body = rows.slice(2);
  if (!count || count.fields.length !== 1 || parseId(count.fields[0]) === null) {
    problems.push({
      path: file,
      problem: `line ${count?.line ?? 1}: expected the number of images, got '${count?.fields.join(' ') ?? ''}'`,
      severity: 'error',
    });
    body = rows.slice(count && count.fields.join(' ').toLowerCase() === INSHOP_HEADER.join(' ') ? 1 : 0);
  } else if (!header || header.fields.join(' ').toLowerCase() !== INSHOP_HEADER.join(' ')) {
    problems.push({
      path: file,
      problem: `line ${header?.line ?? 2}: expected the header '${INSHOP_HEADER.join(' ')}', got '${header?.fields.join(' ') ?? ''}'`,
      severity: 'error',
    });
    body = rows.slice(1).filter((r) => r.fields.length === 3 && INSHOP_SPLITS.includes(r.fields[2] as (typeof INSHOP_SPLITS)[number]));
  }
  const splits = new Map<string, ListedImage[]>(INSHOP_SPLITS.map((s) => [s, []]));
  const classNames = new Map<ClassId, string>();
  for (const { line, fields } of body) {
    const [path, item, status] = fields as [string, string, string];
    const images = splits.get(status);
    if (fields.length !== 3 || !images) {
      problems.push({
        path: file,
        problem: `line ${line}: expected '<image_name> <item_id> train|query|gallery', got '${fields.join(' ')}'`,
        severity: 'error',
      });
      continue;
    }
    classNames.set(item, item);
    images.push({ path: relPath(base, path.replace(/\\/g, '/')), classId: item });
  }
  if (count && parseId(count.fields[0]) !== null && Number(count.fields[0]) !== body.length) {
    problems.push({ path: file, problem: `line ${count.line} says ${count.fields[0]} images, the file lists ${body.length}`, severity: 'warning' });
  }
  return {
    dataset: 'inshop',
    root,
    classNames,
    sharedLabels: [['query', 'gallery']],
    problems,
    splits: INSHOP_SPLITS.map((name) => ({ name, images: splits.get(name) as ListedImage[] })),
  };
}
