export { type CatalogEntry, toHiveModel } from "./catalog-entry.js";
export { checkGgufFile, GGUF_MAGIC } from "./gguf-file.js";
export { METADATA_FILE, type MetadataRead, readMetadataFile, writeMetadataFile } from "./metadata-file.js";
export { ModelCatalog, ModelIdTakenError, RESOLVE_HINT, type RegisterOptions } from "./model-catalog.js";
export { assertModelId, idWithPathHash, isModelId, modelDirOf, modelIdFromFileName } from "./model-id.js";
