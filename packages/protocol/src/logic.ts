import { z } from "zod";

/** A machine's states and transitions, for drawing its chart: XState's definition, trimmed. */
export const StateChartSchema = z.object({
  /** Full id, e.g. `counter.counting`; a snapshot's value names states by key path. */
  id: z.string(),
  key: z.string(),
  type: z.enum(["atomic", "compound", "parallel", "final", "history"]),
  initial: z.string().nullable(),
  transitions: z.array(z.object({ event: z.string(), targets: z.array(z.string()) })),
  get states(): z.ZodArray<typeof StateChartSchema> {
    return z.array(StateChartSchema);
  },
});
export type StateChart = z.infer<typeof StateChartSchema>;

/** `GET /v1/logic/:name` */
export const LogicInfoSchema = z.object({
  name: z.string(),
  kind: z.enum(["machine", "promise"]),
  capabilities: z.array(z.string()),
  chart: StateChartSchema.nullable(),
});
export type LogicInfo = z.infer<typeof LogicInfoSchema>;
