/** Bumped whenever a frame changes shape; peers with another version are refused at handshake. */
export const PROTOCOL_VERSION = 1;

/** Frames larger than this are refused unless the node is configured otherwise. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
