// Stanford Online Products as distributed (Stanford_Online_Products.zip, extracted): --data-root
// is the Stanford_Online_Products folder, holding
//
//   Ebay_train.txt, Ebay_test.txt   header 'image_id class_id super_class_id path', then rows
//                                   e.g. 1 1 1 bicycle_final/111085122871_0.JPG
//   bicycle_final/, cabinet_final/, … (the images, at the listed paths)
//
// Splits (docs/algorithm.md §8): Ebay_train.txt → train (59,551 images, 11,318 classes), Ebay_test.txt →
// test (60,502 images, 11,316 classes). The own class identifier is class_id; a class's name is
// its product id, the file-name stem before '_' (what the official conversion names its folder).
// Lines are split on whitespace, so CRLF endings and other id widths are fine (cf. QUIRK 20).
import { resolve } from 'node:path';
import { type BenchmarkListing, type ClassId, type DatasetProblem, type ListedImage, type ListedSplit, parseId, readTable, requireLayout } from './listing.ts';

export const SOP_FILES = { train: 'Ebay_train.txt', test: 'Ebay_test.txt' } as const;
export const SOP_HEADER = ['image_id', 'class_id', 'super_class_id', 'path'] as const;

export function listSop(rootArg: string): BenchmarkListing {
  const root = resolve(rootArg);
  requireLayout(root, 'Stanford_Online_Products', [SOP_FILES.train, SOP_FILES.test]);
  const problems: DatasetProblem[] = [];
  const classNames = new Map<ClassId, string>();
  const splits: ListedSplit[] = [];
  for (const [name, file] of Object.entries(SOP_FILES)) {
    const rows = readTable(root, file);
    const images: ListedImage[] = [];
    const head = rows[0];
    if (!head || head.fields.join(' ').toLowerCase() !== SOP_HEADER.join(' ')) {
      problems.push({
        path: file,
        problem: `line ${head?.line ?? 1}: expected the header '${SOP_HEADER.join(' ')}', got '${head?.fields.join(' ') ?? ''}'`,
        severity: 'error',
      });
    }
    for (const { line, fields } of rows.slice(head && parseId(head.fields[0]) === null ? 1 : 0)) {
      const cls = parseId(fields[1]);
      const path = fields[3];
      if (fields.length !== 4 || parseId(fields[0]) === null || cls === null || parseId(fields[2]) === null || path === undefined) {
        problems.push({ path: file, problem: `line ${line}: expected '${SOP_HEADER.join(' ')}', got '${fields.join(' ')}'`, severity: 'error' });
        continue;
      }
      if (!classNames.has(cls)) {
        const base = path.split('/').pop() as string;
        const cut = base.lastIndexOf('_');
        classNames.set(cls, cut > 0 ? base.slice(0, cut) : base.replace(/\.[^.]*$/, ''));
      }
      images.push({ path: path.replace(/\\/g, '/'), classId: cls });
    }
    splits.push({ name, images });
  }
  return { dataset: 'sop', root, splits, classNames, sharedLabels: [], problems };
}
