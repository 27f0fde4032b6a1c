import { type Checkpoint, type InstanceRecord, type StepStatus, monotonicNow } from "@shoal/protocol";
import type { Runtime } from "@shoal/runtime";
import { type AnyActorLogic, type DoneActorEvent, assign, emit, enqueueActions, setup } from "xstate";
import { resolveFromRefs } from "./fromRefs.js";
import type { Plan, PlannedStep } from "./planWorkflow.js";
import { type StepError, type StepInput, type StepOutput, type StepUpdateEvent, createStepMachine } from "./stepMachine.js";

export type { InstanceRecord };

export interface WorkflowContext {
  workflowId: string;
  plan: Plan;
  /** Wall times (ms since epoch), here and in the records: what the state format shows people. */
  startedAt: number;
  endedAt: number | null;
  /**
   * Where `deadline_ms` runs out on this process's monotonic clock (null: no deadline). Never
   * sent or stored as it is: a copy carries the time left (see WorkflowDeadlines).
   */
  deadlineAt: number | null;
  /**
   * One record per instance. The records are updated in place (and `version` bumped) rather than
   * copied: a copy per event made a long workflow quadratic.
   */
  instances: Record<string, InstanceRecord>;
  /** Instances that have ended: the workflow is over when all have. */
  endedCount: number;
  version: number;
  running: number;
  maxParallel: number;
  /**
   * Its owner is on the smaller side of a split (see quorum.ts): no step starts and it does not
   * end, so no outcome is given out that the majority's owner may replace; running steps end and
   * their records are kept.
   */
  paused: boolean;
}

/** What the workflow emits for webhooks and logs. */
export type WorkflowEmitted =
  | { type: "step.started"; instance: string; node: string | null; attempt: number }
  | { type: "step.retrying"; instance: string; error: StepError | undefined; attempt: number }
  | { type: "step.completed"; instance: string; node: string | null; attempts: number }
  | { type: "step.failed"; instance: string; node: string | null; attempts: number; error: StepError | undefined };

type WorkflowEvent =
  | StepUpdateEvent
  | { type: "step.retrying"; instance: string; error?: StepError; attempt: number }
  | { type: "step.checkpoint"; instance: string; attempt: number; checkpoint: Checkpoint }
  | { type: "CANCEL" }
  | { type: "PAUSE" }
  | { type: "RESUME" }
  | DoneActorEvent<StepOutput>;

const TERMINAL = new Set<StepStatus>(["complete", "failed", "skipped"]);

export interface WorkflowInput {
  workflowId: string;
  startedAt: number;
  /** What is left of `deadline_ms` as this run starts (WorkflowDeadlines); none: no deadline. */
  deadlineLeftMs?: number;
  /**
   * The records of a workflow that ran before its node restarted. Ended instances keep their
   * outcome; the others start again, at the attempt they had reached (with the same key).
   */
  restored?: Record<string, InstanceRecord>;
  /** Starts paused (its owner sees no majority). */
  paused?: boolean;
}

/** An instance's record as a resumed workflow starts it: ended ones as they were, others to run again. */
function resumedRecord(rec: InstanceRecord): InstanceRecord {
  if (TERMINAL.has(rec.status)) return rec;
  const { result: _result, error: _error, input: _input, ...rest } = rec;
  return { ...rest, status: "pending", node: null, spawned: false, actor: null, startedAt: null, endedAt: null };
}
const NEVER = 2 ** 31 - 1;

/** The context a workflow starts with: fresh records, or (resumed) the stored ones as a resume runs them on. */
export function initialContext(plan: Plan, input: WorkflowInput): WorkflowContext {
  const instances: Record<string, InstanceRecord> = Object.fromEntries(
    plan.instances.map((i) => {
      const before = input.restored?.[i.id];
      const fresh: InstanceRecord = { id: i.id, step: i.step, logic: i.logic, status: "pending", node: null, attempts: 0, startedAt: null, endedAt: null, spawned: false, actor: null };
      return [i.id, before ? resumedRecord(before) : fresh];
    }),
  );
  return {
    workflowId: input.workflowId,
    plan,
    startedAt: input.startedAt,
    endedAt: null,
    deadlineAt: input.deadlineLeftMs === undefined ? null : monotonicNow() + input.deadlineLeftMs,
    running: 0,
    endedCount: Object.values(instances).filter((r) => TERMINAL.has(r.status)).length,
    version: 0,
    maxParallel: plan.spec.max_parallel ?? 8,
    paused: input.paused ?? false,
    instances,
  };
}

/**
 * The workflow actor: runs the plan's instances as step actors, each as soon as every step it
 * depends on has ended, within `max_parallel` (the runtime's slots bound the rest); ends when
 * all have ended, at the deadline, or when cancelled.
 */
export function createWorkflowMachine(plan: Plan, runtime: Runtime) {
  const actors: Record<string, AnyActorLogic> = {};
  for (const inst of plan.instances) {
    actors[`step:${inst.id}`] = createStepMachine(runtime.remote(inst.logic, { placement: inst.placement, envelope: true }));
  }
  return setup({
    types: {} as { context: WorkflowContext; input: WorkflowInput; events: WorkflowEvent; emitted: WorkflowEmitted },
    actors,
    // What was left of it as this run started, so a resumed or taken-over workflow keeps its deadline.
    delays: { deadline: ({ context }) => (context.deadlineAt === null ? NEVER : Math.max(0, context.deadlineAt - monotonicNow())) },
    guards: { allEnded: ({ context }) => !context.paused && context.endedCount === context.plan.instances.length },
    actions: {
      schedule: enqueueActions(({ context, enqueue }) => {
        if (context.paused) return;
        const instances = context.instances;
        let running = context.running;
        let ended = context.endedCount;
        const now = Date.now();
        // Per step, once a pass: whether all it needs has ended, what is missing, its resolved
        // input. Instances come grouped by step in dependency order, so what this pass changes
        // of a step is settled before a step that needs it is looked at.
        const ready = new Map<string, { missing: InstanceRecord[]; input: unknown } | null>();
        const readiness = (step: PlannedStep) => {
          if (ready.has(step.spec.id)) return ready.get(step.spec.id) ?? null;
          const depRecords = step.deps.flatMap((d) => plan.steps.get(d)?.instances.map((i) => instances[i.id] as InstanceRecord) ?? []);
          const r = depRecords.every((d) => TERMINAL.has(d.status))
            ? { missing: depRecords.filter((d) => d.status !== "complete"), input: resolveFromRefs(step.spec.input ?? {}, outputsOf(plan, step.deps, instances)) }
            : null;
          ready.set(step.spec.id, r);
          return r;
        };
        for (const inst of plan.instances) {
          const rec = instances[inst.id] as InstanceRecord;
          if (rec.spawned || rec.status !== "pending") continue;
          const step = plan.steps.get(inst.step);
          if (!step) continue;
          const r = readiness(step);
          if (!r) continue;
          if (running >= context.maxParallel) break;
          const missing = r.missing;
          if (missing.length > 0 && step.spec.on_missing === "fail") {
            Object.assign(rec, {
              status: "failed",
              endedAt: now,
              error: { code: "SHOAL_ERR_MISSING_INPUT", message: `${inst.id} needs ${missing.map((r) => r.id).join(", ")}, which did not complete` },
            });
            ended++;
            enqueue.emit({ type: "step.failed", instance: inst.id, node: null, attempts: 0, error: rec.error });
            continue;
          }
          const input: StepInput = {
            workflowId: context.workflowId,
            instance: inst.id,
            input: inst.item === undefined ? r.input : { ...(r.input as object), item: inst.item },
            timeoutMs: step.spec.timeout_ms,
            maxAttempts: 1 + (step.spec.retries ?? 1),
            firstAttempt: Math.max(1, rec.attempts),
            ...(rec.checkpoint && { checkpoint: rec.checkpoint }),
          };
          enqueue.spawnChild(`step:${inst.id}` as never, { id: inst.id, input } as never);
          Object.assign(rec, { spawned: true, attempts: input.firstAttempt, input: input.input });
          running++;
        }
        enqueue.assign({ running, endedCount: ended, version: context.version + 1 });
      }),
      record: enqueueActions(({ context, event, enqueue }) => {
        const done = event as DoneActorEvent<StepOutput>;
        const rec = context.instances[done.actorId];
        if (!rec || TERMINAL.has(rec.status)) return;
        const out = done.output;
        delete rec.checkpoint;
        Object.assign(rec, {
          status: out.status,
          node: out.node ?? rec.node,
          attempts: out.attempts,
          endedAt: Date.now(),
          ...(out.status === "complete" ? { result: out.result } : { error: out.error }),
        });
        enqueue.assign({ running: context.running - 1, endedCount: context.endedCount + 1, version: context.version + 1 });
        // XState keeps an ended child among `children` until it is stopped; a long workflow would
        // carry every finished step in each snapshot.
        enqueue.stopChild(rec.id);
        enqueue.emit(
          out.status === "complete"
            ? { type: "step.completed", instance: rec.id, node: rec.node, attempts: rec.attempts }
            : { type: "step.failed", instance: rec.id, node: rec.node, attempts: rec.attempts, error: out.error },
        );
      }),
      stopAll: enqueueActions(({ context, enqueue }, params: { code: string; message: string }) => {
        const now = Date.now();
        for (const rec of Object.values(context.instances)) {
          if (TERMINAL.has(rec.status)) continue;
          delete rec.checkpoint;
          if (rec.spawned) {
            enqueue.stopChild(rec.id);
            Object.assign(rec, { status: "failed", endedAt: now, error: { code: params.code, message: params.message } });
          } else {
            Object.assign(rec, { status: "skipped", endedAt: now, error: { code: params.code, message: `never ran: ${params.message}` } });
          }
        }
        enqueue.assign({ running: 0, endedCount: context.plan.instances.length, version: context.version + 1 });
      }),
      finish: assign({ endedAt: () => Date.now() }),
    },
  }).createMachine({
    id: "workflow",
    context: ({ input }) => initialContext(plan, input),
    initial: "running",
    states: {
      running: {
        entry: "schedule",
        always: { guard: "allEnded", target: "ended" },
        after: {
          deadline: { target: "ended", actions: { type: "stopAll", params: ({ context }) => ({ code: "SHOAL_ERR_DEADLINE", message: `deadline of ${context.plan.spec.deadline_ms} ms passed` }) } },
        },
        on: {
          "step.update": {
            actions: [
              assign(({ context, event }) => {
                const rec = context.instances[event.instance];
                if (!rec || TERMINAL.has(rec.status)) return {};
                // A checkpoint belongs to one try: a retry starts afresh.
                if (event.attempt !== rec.attempts) delete rec.checkpoint;
                Object.assign(rec, {
                  status: event.placed ? "running" : "pending",
                  node: event.node ?? rec.node,
                  actor: event.actorId ?? rec.actor,
                  attempts: event.attempt,
                  startedAt: rec.startedAt ?? (event.placed ? Date.now() : null),
                });
                return { version: context.version + 1 };
              }),
              enqueueActions(({ event, enqueue }) => {
                if (event.placed) enqueue.emit({ type: "step.started", instance: event.instance, node: event.node, attempt: event.attempt });
              }),
            ],
          },
          "step.checkpoint": {
            actions: assign(({ context, event }) => {
              const rec = context.instances[event.instance];
              if (!rec || TERMINAL.has(rec.status) || rec.attempts !== event.attempt) return {};
              rec.checkpoint = event.checkpoint;
              return { version: context.version + 1 };
            }),
          },
          "step.retrying": { actions: emit(({ event }) => ({ type: "step.retrying" as const, instance: event.instance, error: event.error, attempt: event.attempt })) },
          "xstate.done.actor.*": { actions: ["record", "schedule"] },
          PAUSE: { actions: assign({ paused: true, version: ({ context }) => context.version + 1 }) },
          RESUME: { actions: [assign({ paused: false, version: ({ context }) => context.version + 1 }), "schedule"] },
          CANCEL: { target: "ended", actions: { type: "stopAll", params: { code: "SHOAL_ERR_CANCELLED", message: "the workflow was cancelled" } } },
        },
      },
      ended: { type: "final", entry: "finish" },
    },
  });
}

/** Outputs of the given steps as `$from` sees them: a fan-out's is the list of its completed instances' outputs. */
function outputsOf(plan: Plan, stepIds: string[], instances: Record<string, InstanceRecord>): Map<string, unknown> {
  const outputs = new Map<string, unknown>();
  for (const id of stepIds) {
    const step = plan.steps.get(id);
    if (!step) continue;
    const recs = step.instances.map((i) => instances[i.id] as InstanceRecord);
    if (step.fanOut) outputs.set(id, recs.filter((r) => r.status === "complete").map((r) => r.result));
    else if (recs[0]?.status === "complete") outputs.set(id, recs[0].result);
  }
  return outputs;
}

