import type { z } from "zod";
import { ArtifactMetadata } from "./catalog.js";
import { Device } from "./device.js";
import { EmbedRequest, EmbedResponse } from "./embed.js";
import { ErrorBody } from "./error-body.js";
import { HeartbeatCommand, HeartbeatReply, HiveCommand, WorkerHeartbeat } from "./heartbeat.js";
import { HiveHeartbeat, HiveModel } from "./hive.js";
import {
  InspectModelRequest,
  ModelInspection,
  ResolveModelRequest,
  SharedModel,
  SpawnWorkerRequest,
} from "./hive-api.js";
import { ImageProgressEvent, ImageRequest, ImageResponse } from "./image.js";
import { ErrorEvent, InferRequest, InferResponse, TokenEvent, ToolCallEvent } from "./infer.js";
import { JobCreated, JobEvent } from "./jobs.js";
import { ApiKeyInfo, CatalogListing, ClusterEvent, ClusterSnapshot, CreateJobRequest } from "./queen-api.js";
import { HealthResponse, WorkerInfo, WorkerStatus } from "./worker.js";
import {
  CatalogWorkerDetail,
  CatalogWorkerList,
  InstalledPackageInfo,
  InstallWorkerPackageRequest,
  PublishWorkerRequest,
  QueenWorkerPackageDetail,
  QueenWorkerPackageList,
  ReviewRequest,
  WorkerPackageManifest,
} from "./worker-packages.js";
import { ClusterWorkerTypes, HiveWorkerTypes, InstalledWorkerType } from "./worker-types.js";

/** Every wire message by name: what `npm run schemas` writes as JSON Schema under docs/schemas/. */
export const WIRE_SCHEMAS: Record<string, z.ZodType> = {
  WorkerStatus,
  HealthResponse,
  WorkerInfo,
  InferRequest,
  InferResponse,
  TokenEvent,
  ToolCallEvent,
  ErrorEvent,
  EmbedRequest,
  EmbedResponse,
  ImageRequest,
  ImageResponse,
  ImageProgressEvent,
  WorkerHeartbeat,
  HeartbeatCommand,
  HeartbeatReply,
  HiveCommand,
  Device,
  HiveHeartbeat,
  HiveModel,
  SpawnWorkerRequest,
  ResolveModelRequest,
  SharedModel,
  InspectModelRequest,
  ModelInspection,
  CatalogListing,
  CreateJobRequest,
  JobEvent,
  JobCreated,
  ClusterSnapshot,
  ClusterEvent,
  ApiKeyInfo,
  ArtifactMetadata,
  InstalledWorkerType,
  HiveWorkerTypes,
  ClusterWorkerTypes,
  WorkerPackageManifest,
  CatalogWorkerList,
  CatalogWorkerDetail,
  PublishWorkerRequest,
  ReviewRequest,
  InstallWorkerPackageRequest,
  InstalledPackageInfo,
  QueenWorkerPackageList,
  QueenWorkerPackageDetail,
  ErrorBody,
};
