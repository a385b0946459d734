export { type CatalogEntry, toHiveModel } from "./catalog-entry.js";
export { checkGgufFile, GGUF_MAGIC } from "./gguf-file.js";
export * from "./hf/index.js";
export { METADATA_FILE, type MetadataRead, readMetadataFile, writeMetadataFile } from "./metadata-file.js";
export {
  type EntryFields,
  ModelCatalog,
  ModelIdTakenError,
  RESOLVE_HINT,
  type RegisterOptions,
} from "./model-catalog.js";
export { assertModelId, idWithPathHash, isModelId, modelDirOf, modelIdFromFileName } from "./model-id.js";
export {
  catalogIdFor,
  formatModelRef,
  type HfModelRef,
  type ModelRef,
  type ParseModelRefOptions,
  parseModelRef,
} from "./model-ref.js";
