// Cars196 (Stanford Cars) as distributed for retrieval: --data-root is the folder holding
//
//   cars_annos.mat   MATLAB v5: `annotations`, a struct array with fields relative_im_path
//                    ('car_ims/000001.jpg'), bbox_x1, bbox_y1, bbox_x2, bbox_y2, class (1–196),
//                    test (0/1); and `class_names`, a cell of 196 strings (a padded char
//                    matrix is accepted too)
//   car_ims/         the 16,185 images (car_ims.tgz extracted)
//
// Retrieval split (docs/algorithm.md §8): classes 1–98 train (8,054 images), 99–196 test (8,131),
// whatever the `test` flag says; the bounding boxes are not used. Images in annotation order; the
// own class identifier is the class number, its name the class_names entry.
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { type BenchmarkListing, type ClassId, type DatasetProblem, type ListedImage, requireLayout } from './listing.ts';
import { MatError, type MatFile, matCharRows, matField, matScalar, matString, matVariable, readMat } from './matlab_v5.ts';

export const CARS_TRAIN_CLASSES = 98;
export const CARS_LAYOUT = ['cars_annos.mat', 'car_ims/'] as const;

export function listCars196(rootArg: string): BenchmarkListing {
  const root = resolve(rootArg);
  requireLayout(root, 'Cars196 (a folder with cars_annos.mat and car_ims/)', CARS_LAYOUT);
  const file = join(root, 'cars_annos.mat');
  let mat: MatFile;
  try {
    mat = readMat(file);
  } catch (err) {
    if (err instanceof MatError) throw new UserError(err.message);
    throw err;
  }
  const problems: DatasetProblem[] = [];
  const classNames = new Map<ClassId, string>();
  const train: ListedImage[] = [];
  const test: ListedImage[] = [];
  try {
    const annotations = matVariable(mat, 'annotations', file);
    if (annotations.kind !== 'struct') throw new MatError(`${file}: 'annotations' is a ${annotations.kind} array, expected a struct array`);
    const names = mat.variables.get('class_names');
    if (names?.kind === 'cell') names.cells.forEach((c, i) => classNames.set(i + 1, matString(c, `${file}: class_names{${i + 1}}`).trim()));
    else if (names?.kind === 'char') matCharRows(names, `${file}: class_names`).forEach((row, i) => classNames.set(i + 1, row.replace(/[\s\0]+$/, '')));
    else problems.push({ path: 'cars_annos.mat', problem: "no cell array 'class_names': classes are named by number", severity: 'warning' });
    for (const f of ['relative_im_path', 'class']) {
      if (!annotations.fields.includes(f)) throw new MatError(`${file}: 'annotations' has no field '${f}' (fields: ${annotations.fields.join(', ')})`);
    }
    annotations.elements.forEach((_, i) => {
      const what = `${file}: annotations(${i + 1})`;
      const path = matString(matField(annotations, i, 'relative_im_path', what), `${what}.relative_im_path`);
      const cls = matScalar(matField(annotations, i, 'class', what), `${what}.class`);
      if (!Number.isInteger(cls) || cls < 1) {
        problems.push({ path: 'cars_annos.mat', problem: `annotation ${i + 1} (${path}): class ${cls} is not a positive integer`, severity: 'error' });
        return;
      }
      if (classNames.size > 0 && !classNames.has(cls))
        problems.push({ path: 'cars_annos.mat', problem: `annotation ${i + 1} (${path}): class ${cls} has no entry in class_names`, severity: 'warning' });
      (cls <= CARS_TRAIN_CLASSES ? train : test).push({ path: path.replace(/\\/g, '/').replace(/^\.\//, ''), classId: cls });
    });
  } catch (err) {
    if (err instanceof MatError) throw new UserError(`${err.message} (expected Cars196's cars_annos.mat)`);
    throw err;
  }
  return {
    dataset: 'cars196',
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
