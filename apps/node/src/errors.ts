import { MeshErrors } from "@shoal/mesh";
import { type ErrorCatalog, ProtocolErrors } from "@shoal/protocol";
import { RuntimeErrors } from "@shoal/runtime";
import { ToolErrors } from "@shoal/tools";
import { TransportErrors } from "@shoal/transport";
import { WorkflowErrors } from "@shoal/workflow";

/** Codes raised by the `shoal` command and the node's HTTP API. */
export const NodeErrors = {
  SHOAL_ERR_BAD_FLAG: { status: 400, doc: "a command-line flag has a value that cannot be used" },
  SHOAL_ERR_BAD_CONFIG: { status: 400, doc: "the config file cannot be read, parsed, or fails its schema (the message names the key)" },
  SHOAL_ERR_BAD_SECRET_FILE: { status: 400, doc: "the --secret-file cannot be read or is empty" },
  SHOAL_ERR_INSECURE: { status: 400, doc: "shoal node on an address that is not loopback without --tls-dir and --token-key-file (or --insecure)" },
  SHOAL_ERR_BAD_TOKEN_KEY: { status: 400, doc: "the --token-key-file or --revoked-tokens file cannot be read, or the key is not 64 hex digits" },
  SHOAL_ERR_PORT_IN_USE: { status: 500, doc: "another process listens on the node's host and port" },
  SHOAL_ERR_DATA_DIR_LOCKED: { status: 500, doc: "another running node uses the same --data-dir" },
  SHOAL_ERR_BAD_REQUEST: { status: 400, doc: "a request body the API cannot use: not JSON, or the wrong schema (the path says where)" },
  SHOAL_ERR_BAD_URL: { status: 400, doc: "a request path that cannot be decoded: bad percent-encoding (`%ZZ`) or bytes that are not UTF-8" },
  SHOAL_ERR_BODY_TOO_LARGE: { status: 413, doc: "a request body over --max-body-bytes (default 4 MiB); the connection closes after the answer" },
  SHOAL_ERR_TOO_DEEP: { status: 400, doc: "a JSON request body nested deeper than --max-json-depth (default 64 arrays or objects)" },
  SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, doc: "a request body sent without `Content-Type: application/json`" },
  SHOAL_ERR_BAD_HTTP: { status: 400, doc: "bytes that are not an HTTP/1.1 request (request line, header or chunk syntax); answered, then the connection closes" },
  SHOAL_ERR_HEADERS_TOO_LARGE: { status: 431, doc: "a request line and headers over 16 KiB; answered, then the connection closes" },
  SHOAL_ERR_CLIENT_TIMEOUT: { status: 408, doc: "a client that sent no complete headers within 10 s or no complete request within 60 s; answered, then the connection closes" },
  SHOAL_ERR_UNAUTHORIZED: { status: 401, doc: "an API call on a node with --token-key-file without a valid `Authorization: Bearer <token>`: missing, not signed with the cluster's token key, expired or revoked (the message says which)" },
  SHOAL_ERR_FORBIDDEN: { status: 403, doc: "a valid API token whose scope does not cover the route: read = GET routes and /v1/inspect, submit = also workflows, tasks, cancel, actors, admin = everything" },
  SHOAL_ERR_TOKEN_IN_URL: { status: 400, doc: "an API token (or a `token` query parameter) in a URL: tokens go in the Authorization header, or as the inspector's first message" },
  SHOAL_ERR_BAD_HOST: { status: 421, doc: "a Host header that names neither the node (its name, addresses, certificate names) nor an --allow-host: how DNS rebinding shows" },
  SHOAL_ERR_BAD_ORIGIN: { status: 403, doc: "a browser request or WebSocket upgrade from another origin than the node's own, not named by --allow-origin" },
  SHOAL_ERR_NOT_FOUND: { status: 404, doc: "no such route" },
  SHOAL_ERR_METHOD_NOT_ALLOWED: { status: 405, doc: "the route exists but not for this HTTP method" },
  SHOAL_ERR_INTERNAL: { status: 500, doc: "a bug: an API handler failed in a way nobody planned for; logged with its stack" },
  SHOAL_ERR_UNREACHABLE: { status: 502, doc: "the CLI could not reach the node given with --node" },
} as const satisfies ErrorCatalog;

export type NodeErrorCode = keyof typeof NodeErrors;

/** Every code a node can answer with, for the HTTP status of each. */
export const allErrors: ErrorCatalog = { ...ProtocolErrors, ...TransportErrors, ...MeshErrors, ...RuntimeErrors, ...ToolErrors, ...WorkflowErrors, ...NodeErrors };
