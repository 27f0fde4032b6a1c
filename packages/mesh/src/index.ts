export { Mesh } from "./Mesh.js";
export type { MemberView, MeshEvents, MeshOptions } from "./Mesh.js";
export { MembershipTable } from "./MembershipTable.js";
export type { MemberChange, MemberChangeKind } from "./MembershipTable.js";
export { FailureDetector } from "./FailureDetector.js";
export type { FailureDetectorOptions, Verdict } from "./FailureDetector.js";
