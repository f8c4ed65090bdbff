// CUB-200-2011 as distributed (CUB_200_2011.tgz, extracted): --data-root is the CUB_200_2011
// folder, holding
//
//   images.txt              <image_id> <path under images/>   e.g. 1 001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg
//   classes.txt             <class_id> <name>                 e.g. 1 001.Black_footed_Albatross
//   image_class_labels.txt  <image_id> <class_id>
//   images/
//
// Retrieval split (docs/algorithm.md §8): classes 1–100 train (5,864 images), 101–200 test (5,924).
// train_test_split.txt is the classification split and is not used. Images in images.txt order;
// the own class identifier is the class number, the class name the classes.txt name (the folder).
import { resolve } from 'node:path';
import { type BenchmarkListing, type ClassId, type DatasetProblem, type ListedImage, parseId, readTable, relPath, requireLayout } from './listing.ts';

export const CUB_TRAIN_CLASSES = 100;
export const CUB_LAYOUT = ['images.txt', 'classes.txt', 'image_class_labels.txt', 'images/'] as const;

export function listCub200(rootArg: string): BenchmarkListing {
  const root = resolve(rootArg);
  requireLayout(root, 'CUB_200_2011', CUB_LAYOUT);
  const problems: DatasetProblem[] = [];
  const bad = (file: string, line: number, what: string): void => {
    problems.push({ path: file, problem: `line ${line}: ${what}`, severity: 'error' });
  };

  const classNames = new Map<ClassId, string>();
  for (const { line, fields } of readTable(root, 'classes.txt')) {
    const id = parseId(fields[0]);
    if (id === null || fields.length !== 2) bad('classes.txt', line, `expected '<class_id> <name>', got '${fields.join(' ')}'`);
    else if (classNames.has(id)) bad('classes.txt', line, `class ${id} listed twice`);
    else classNames.set(id, fields[1] as string);
  }

  const classOf = new Map<number, number>();
  for (const { line, fields } of readTable(root, 'image_class_labels.txt')) {
    const image = parseId(fields[0]);
    const cls = parseId(fields[1]);
    if (image === null || cls === null || fields.length !== 2)
      bad('image_class_labels.txt', line, `expected '<image_id> <class_id>', got '${fields.join(' ')}'`);
    else if (classOf.has(image)) bad('image_class_labels.txt', line, `image ${image} labelled twice`);
    else classOf.set(image, cls);
  }

  const train: ListedImage[] = [];
  const test: ListedImage[] = [];
  const seen = new Set<number>();
  for (const { line, fields } of readTable(root, 'images.txt')) {
    const image = parseId(fields[0]);
    if (image === null || fields.length !== 2) {
      bad('images.txt', line, `expected '<image_id> <path>', got '${fields.join(' ')}'`);
      continue;
    }
    if (seen.has(image)) {
      bad('images.txt', line, `image ${image} listed twice`);
      continue;
    }
    seen.add(image);
    const path = fields[1] as string;
    const cls = classOf.get(image);
    if (cls === undefined) {
      bad('images.txt', line, `image ${image} (${path}) has no class in image_class_labels.txt`);
      continue;
    }
    if (!classNames.has(cls))
      problems.push({ path: 'image_class_labels.txt', problem: `image ${image}: class ${cls} is not in classes.txt`, severity: 'warning' });
    const folder = /^(\d+)\./.exec(path);
    if (folder && Number(folder[1]) !== cls)
      problems.push({
        path: relPath('images', path),
        problem: `in folder ${path.split('/')[0]} but labelled class ${cls} in image_class_labels.txt`,
        severity: 'warning',
      });
    (cls <= CUB_TRAIN_CLASSES ? train : test).push({ path: relPath('images', path), classId: cls });
  }
  for (const image of classOf.keys()) {
    if (!seen.has(image)) problems.push({ path: 'image_class_labels.txt', problem: `image ${image} is labelled but not in images.txt`, severity: 'warning' });
  }
  return {
    dataset: 'cub200',
    root,
    classNames,
    sharedLabels: [],
    problems,
    splits: [
      { name: 'train', images: train },
      { name: 'test', images: test },
    ],
  };
}
