/** Evaluation datasets: reading and checking them, choosing tasks, their contexts, and generated sets. */
export { DATASET_PROBLEMS_SHOWN, DatasetError, type DatasetProblem } from './dataset-error.js';
export { COUNTING_LABELS, GENERATOR_KINDS, type GeneratorKind, type GeneratorOptions, generateDataset } from './generators/index.js';
export { DATASET_EXTENSIONS, type DatasetFormat, datasetFormat } from './parse-rows.js';
export { type Dataset, type ReadDatasetOptions, readDataset } from './read-dataset.js';
export { type SeededRandom, seededRandom } from './seeded-random.js';
export { DEFAULT_SAMPLE_SEED, type SelectTasksOptions, selectTasks } from './select-tasks.js';
export { taskContextChars, taskContextText, taskContextValue } from './task-context.js';
export { TASK_FIELDS, type TaskField } from './task-row.js';
export { writeJsonl } from './write-jsonl.js';
