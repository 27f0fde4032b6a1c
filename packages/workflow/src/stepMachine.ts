import { type Checkpoint, type ErrorBody, errorBodyOf } from "@shoal/protocol";
import type { RemoteEnvelope, RemoteSnapshot } from "@shoal/runtime";
import { type AnyActorLogic, assign, sendParent, setup } from "xstate";

export interface StepInput {
  workflowId: string;
  instance: string;
  input: unknown;
  timeoutMs: number | undefined;
  /** Tries in all: 1 + retries. */
  maxAttempts: number;
  /** The try it starts at: above 1 when a resumed workflow runs it again. */
  firstAttempt?: number;
  /** An agent's checkpoint of that try, kept by the workflow's copy: that try goes on from it (a retry starts afresh). */
  checkpoint?: Checkpoint;
}

/** A step's error: the one error body every layer uses. */
export type StepError = ErrorBody;

export interface StepContext extends StepInput {
  attempt: number;
  node: string | null;
  /** The runtime actor of the current attempt. */
  actorId: string | null;
  placed: boolean;
  result?: unknown;
  error?: StepError;
  errors: { attempt: number; node: string | null; error: StepError }[];
}

/** What a step machine ends with; the workflow records it. */
export interface StepOutput {
  status: "complete" | "failed";
  result?: unknown;
  error?: StepError;
  attempts: number;
  node: string | null;
  errors: StepContext["errors"];
}

/** Sent to the workflow whenever the step's placement, node or attempt changes. */
export interface StepUpdateEvent {
  type: "step.update";
  instance: string;
  node: string | null;
  actorId: string | null;
  placed: boolean;
  attempt: number;
  retrying?: StepError;
}

const NEVER = 2 ** 31 - 1;

function toStepError(err: unknown): StepError {
  return errorBodyOf(err, "SHOAL_ERR_ACTOR_FAILED");
}

/**
 * One step (or fan-out instance) of a workflow: runs its tool or agent through the runtime as an
 * invoked remote child, enforces `timeout_ms`, retries on timeout or error up to its limit, and
 * ends `complete` or `failed`. A move to another node happens inside the remote child and is not
 * a retry.
 */
export function createStepMachine(tool: AnyActorLogic) {
  return setup({
    types: {} as { context: StepContext; input: StepInput; output: StepOutput },
    actors: { tool },
    delays: { timeout: ({ context }) => context.timeoutMs ?? NEVER },
    guards: { canRetry: ({ context }) => context.attempt < context.maxAttempts },
    actions: {
      report: sendParent(
        ({ context }): StepUpdateEvent => ({ type: "step.update", instance: context.instance, node: context.node, actorId: context.actorId, placed: context.placed, attempt: context.attempt }),
      ),
    },
  }).createMachine({
    id: "step",
    context: ({ input }) => ({ ...input, attempt: input.firstAttempt ?? 1, node: null, actorId: null, placed: false, errors: [] }),
    initial: "running",
    states: {
      running: {
        entry: [assign({ placed: false }), "report"],
        invoke: {
          src: "tool",
          input: ({ context }: { context: StepContext }): RemoteEnvelope => ({
            input: context.input,
            key: `${context.workflowId}/${context.instance}`,
            attempt: context.attempt,
            labels: { workflowId: context.workflowId, stepId: context.instance },
            ...(context.checkpoint && context.attempt === (context.firstAttempt ?? 1) && { checkpoint: context.checkpoint }),
          }),
          onSnapshot: {
            actions: [
              assign(({ event, context }) => {
                const snap = event.snapshot as RemoteSnapshot;
                const placed = snap.placement === "running";
                return { node: snap.node ?? context.node, actorId: snap.actorId ?? context.actorId, placed };
              }),
              "report",
            ],
          },
          onDone: { target: "complete", actions: assign({ result: ({ event }) => event.output }) },
          onError: [
            {
              guard: "canRetry",
              target: "running",
              reenter: true,
              actions: [
                assign(({ context, event }) => ({ errors: [...context.errors, { attempt: context.attempt, node: context.node, error: toStepError(event.error) }], attempt: context.attempt + 1 })),
                sendParent(({ context }) => ({ type: "step.retrying", instance: context.instance, error: context.errors.at(-1)?.error, attempt: context.attempt })),
              ],
            },
            {
              target: "failed",
              actions: assign(({ context, event }) => ({
                error: toStepError(event.error),
                errors: [...context.errors, { attempt: context.attempt, node: context.node, error: toStepError(event.error) }],
              })),
            },
          ],
        },
        after: {
          timeout: [
            {
              guard: "canRetry",
              target: "running",
              reenter: true,
              actions: [
                assign(({ context }) => ({
                  errors: [...context.errors, { attempt: context.attempt, node: context.node, error: timeoutError(context) }],
                  attempt: context.attempt + 1,
                })),
                sendParent(({ context }) => ({ type: "step.retrying", instance: context.instance, error: context.errors.at(-1)?.error, attempt: context.attempt })),
              ],
            },
            {
              target: "failed",
              actions: assign(({ context }) => ({ error: timeoutError(context), errors: [...context.errors, { attempt: context.attempt, node: context.node, error: timeoutError(context) }] })),
            },
          ],
        },
      },
      complete: { type: "final" },
      failed: { type: "final" },
    },
    output: ({ context }): StepOutput => ({
      status: context.error ? "failed" : "complete",
      ...(context.error ? { error: context.error } : { result: context.result }),
      attempts: context.attempt,
      node: context.node,
      errors: context.errors,
    }),
  });
}

function timeoutError(context: StepContext): StepError {
  return { code: "SHOAL_ERR_STEP_TIMEOUT", message: `${context.instance} took longer than ${context.timeoutMs} ms (attempt ${context.attempt})` };
}
