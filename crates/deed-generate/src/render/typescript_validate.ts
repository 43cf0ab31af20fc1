// Runtime checks of deed's event envelopes: no dependency, a path in every error.

/** A value that is not what its event says it is. */
export class DeedValidationError extends Error {
  constructor(
    /** Where: `$.payload.price`. */
    readonly path: string,
    /** What was expected there. */
    readonly expected: string,
    /** What was found, as JSON (or its type when it has none). */
    readonly found: string,
  ) {
    super(`${path}: expected ${expected}, found ${found}`);
    this.name = "DeedValidationError";
  }
}

/** deed's envelope, as every bus carries it. */
export interface Envelope<Type extends string, Contract extends string | null, Op extends string, Key, Payload> {
  /** `<service>/<position>`: the same for a redelivered event. */
  readonly id: string;
  readonly type: Type;
  readonly contract: Contract;
  readonly op: Op;
  readonly key: Key;
  /** The place in the owner's commit order; sorts as text. */
  readonly position: string;
  /** The commit's LSN, as PostgreSQL prints it. */
  readonly lsn: string;
  /** RFC 3339. */
  readonly committed_at: string;
  readonly payload: Payload;
  readonly tombstone?: true;
}

export type Check = (value: unknown, path: string) => void;

function shown(value: unknown): string {
  if (value === undefined) return "nothing";
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return typeof value;
  }
}

function fail(path: string, expected: string, found: unknown): never {
  throw new DeedValidationError(path, expected, shown(found));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function passes(check: Check, value: unknown): boolean {
  try {
    check(value, "$");
    return true;
  } catch (e) {
    if (e instanceof DeedValidationError) return false;
    throw e;
  }
}

export const any: Check = () => undefined;

export const boolean: Check = (value, path) => {
  if (typeof value !== "boolean") fail(path, "a boolean", value);
};

export const integer: Check = (value, path) => {
  if (typeof value !== "number" || !Number.isInteger(value)) fail(path, "an integer", value);
};

export const float: Check = (value, path) => {
  if (typeof value === "number" || value === "NaN" || value === "Infinity" || value === "-Infinity") return;
  fail(path, "a number, \"NaN\", \"Infinity\" or \"-Infinity\"", value);
};

export const string: Check = (value, path) => {
  if (typeof value !== "string") fail(path, "a string", value);
};

function matching(pattern: RegExp, what: string): Check {
  return (value, path) => {
    if (typeof value !== "string" || !pattern.test(value)) fail(path, what, value);
  };
}

export const numeric = matching(/^(-?[0-9]+(\.[0-9]+)?|NaN|-?Infinity)$/, "a numeric's digits as a string");

export const uuid = matching(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, "a UUID");

const zonedTimestamp = matching(
  /^(-?infinity|\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)( BC)?)$/,
  "an RFC 3339 timestamp with its zone",
);
const localTimestamp = matching(
  /^(-?infinity|\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?( BC)?)$/,
  "an RFC 3339 timestamp without a zone",
);

export function timestamp(zoned: boolean): Check {
  return zoned ? zonedTimestamp : localTimestamp;
}

export function oneOf(labels: readonly string[]): Check {
  return (value, path) => {
    if (typeof value !== "string" || !labels.includes(value)) fail(path, `one of ${labels.join(", ")}`, value);
  };
}

/** An object with these columns: name, check, NOT NULL. A column that may
 * be NULL may also be absent; columns not listed are allowed (a later
 * version's), as the event's compatibility rule intends. */
export function fields(columns: readonly (readonly [string, Check, boolean])[]): Check {
  return (value, path) => {
    if (!isObject(value)) fail(path, "an object", value);
    for (const [name, check, notNull] of columns) {
      const at = `${path}.${name}`;
      const present = Object.prototype.hasOwnProperty.call(value, name);
      const item = present ? value[name] : undefined;
      if (item === null || !present) {
        if (notNull) fail(at, "a value (the column is NOT NULL)", present ? item : undefined);
        continue;
      }
      check(item, at);
    }
  };
}

const emptyObject: Check = (value, path) => {
  if (!isObject(value) || Object.keys(value).length > 0) fail(path, "{} (a TRUNCATE has no key)", value);
};

const isNull: Check = (value, path) => {
  if (value !== null) fail(path, "null", value);
};

const ENVELOPE = ["id", "type", "contract", "key", "op", "position", "lsn", "committed_at", "payload", "tombstone"];

function envelope(kind: string, contract: string | null, ops: readonly string[], value: unknown, path: string): Record<string, unknown> {
  if (!isObject(value)) fail(path, "an event envelope (an object)", value);
  for (const name of Object.keys(value)) {
    if (!ENVELOPE.includes(name)) fail(`${path}.${name}`, "no such member (not in deed's envelope)", value[name]);
  }
  for (const name of ["id", "position", "lsn", "committed_at"]) string(value[name], `${path}.${name}`);
  if (value.type !== kind) fail(`${path}.type`, JSON.stringify(kind), value.type);
  if (value.contract !== contract) fail(`${path}.contract`, JSON.stringify(contract), value.contract);
  oneOf(ops)(value.op, `${path}.op`);
  if ("tombstone" in value && value.tombstone !== true) fail(`${path}.tombstone`, "true", value.tombstone);
  return value;
}

/** A domain event: `deed.emit`'s key and payload, whatever they are. */
export function domainEnvelope(kind: string): Check {
  return (value, path) => {
    const e = envelope(kind, null, ["domain"], value, path);
    if (!("key" in e)) fail(`${path}.key`, "a key", undefined);
    if (!("payload" in e)) fail(`${path}.payload`, "a payload", undefined);
  };
}

/** A state event: a row inserted or updated, a key deleted, a table truncated. */
export function stateEnvelope(kind: string, contract: string, key: Check, row: Check): Check {
  return (value, path) => {
    const e = envelope(kind, contract, ["insert", "update", "delete", "truncate"], value, path);
    switch (e.op) {
      case "insert":
      case "update":
        key(e.key, `${path}.key`);
        row(e.payload, `${path}.payload`);
        break;
      case "delete":
        key(e.key, `${path}.key`);
        isNull(e.payload, `${path}.payload`);
        if (e.tombstone !== true) fail(`${path}.tombstone`, "true (a delete is a tombstone)", e.tombstone);
        break;
      default:
        emptyObject(e.key, `${path}.key`);
        isNull(e.payload, `${path}.payload`);
    }
  };
}
