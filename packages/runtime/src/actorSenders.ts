import type { NodeIdentity } from "@shoal/protocol";

/** The name of the node that supervises an actor: its id is `<supervisor name>~<suffix>`. */
export function supervisorNameOf(actorId: string): string {
  return actorId.slice(0, actorId.indexOf("~"));
}

/** What a node knows of the actors it hosts and supervises, for the sender rules of PEER_METHODS. */
export interface ActorSendersView {
  selfName: string;
  /** The supervisor's node id of an actor hosted here; undefined when none is. */
  hostedFor(actorId: string): string | undefined;
  /**
   * The node id an actor supervised here was placed on at `epoch`: undefined when the actor is
   * not known here (never, or finished and forgotten), null when it never had that epoch.
   */
  placedAt(actorId: string, epoch: number): string | null | undefined;
}

/**
 * `host.*`: only an actor's supervisor steers it. The actor's id names its supervisor, which
 * names itself in a spawn; an actor hosted here takes orders only from the node that placed it.
 * An actor not hosted here is left to the handler, which answers SHOAL_ERR_UNKNOWN_ACTOR.
 */
export function supervisorRefusal(view: ActorSendersView, body: { actorId: string; supervisor?: string }, from: NodeIdentity): string | undefined {
  const named = supervisorNameOf(body.actorId);
  if (named !== from.name) return `actor ${body.actorId} is supervised by ${named}`;
  if (body.supervisor !== undefined && body.supervisor !== from.id) return `it names node ${body.supervisor} as the supervisor, not itself`;
  const hostedFor = view.hostedFor(body.actorId);
  if (hostedFor !== undefined && hostedFor !== from.id) return `actor ${body.actorId} runs here for supervisor node ${hostedFor}`;
  return undefined;
}

/**
 * `host.holds`: a supervisor asks only about actors it supervises, every one of them named
 * after it (the host answers for those it runs for that very node).
 */
export function holdsRefusal(body: { actors: { actorId: string }[] }, from: NodeIdentity): string | undefined {
  const other = body.actors.find((a) => supervisorNameOf(a.actorId) !== from.name);
  return other && `actor ${other.actorId} is supervised by ${supervisorNameOf(other.actorId)}`;
}

/**
 * `sup.*`: only the host reports on an actor, to its supervisor: the actor must be supervised
 * here, and the sender the node it was placed on at that epoch. A report on an actor no longer
 * known here is left to the supervisor, which drops it as stale.
 */
export function hostRefusal(view: ActorSendersView, body: { actorId: string; epoch: number }, from: NodeIdentity): string | undefined {
  const named = supervisorNameOf(body.actorId);
  if (named !== view.selfName) return `actor ${body.actorId} is supervised by ${named}, not here`;
  const placed = view.placedAt(body.actorId, body.epoch);
  if (placed === undefined || placed === from.id) return undefined;
  return placed === null ? `actor ${body.actorId} was never placed at epoch ${body.epoch}` : `actor ${body.actorId} was placed on node ${placed} at epoch ${body.epoch}`;
}
