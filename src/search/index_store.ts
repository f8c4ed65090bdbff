// PLACEHOLDER, replaced at merge by the LanceDB index (another branch writes it). It exists only so
// `hardneg serve --index` typechecks on this branch; it refuses every directory.
import { UserError } from '../errors.ts';
import type { SearchIndex } from './types.ts';

export async function openIndex(dir: string): Promise<SearchIndex> {
  throw new UserError(`${dir}: search indexes are not built yet in this version (index_store.ts is a placeholder)`);
}
