/**
 * The file source (DESIGN.md §1): mesh resources from a watched directory of YAML/JSON files.
 */
export { loadDirectory, createLoadCache, CONFIG_FILE_PATTERN, type LoadResult, type LoadCache, type CachedFile } from './load.js';
export { createFileSource, type FileSource, type FileSourceOptions } from './source.js';
