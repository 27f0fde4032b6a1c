export { Mesh } from "./Mesh.js";
export type { MemberView, MeshEvents, MeshOptions, MeshStats } from "./Mesh.js";
export { MembershipTable } from "./MembershipTable.js";
export type { MemberChange, MemberChangeKind, MembershipStats, MembershipTableOptions, MergeVerdict } from "./MembershipTable.js";
export { FailureDetector } from "./FailureDetector.js";
export type { FailureDetectorOptions, Verdict } from "./FailureDetector.js";
export { MeshErrors } from "./errors.js";
export type { MeshErrorCode } from "./errors.js";
