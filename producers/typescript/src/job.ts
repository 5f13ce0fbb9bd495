// The job wire format (docs/wire-format.md) and its validation, rule for rule what
// waq's Go side checks (queue.Decode / Job.Validate) and what
// schema/job.schema.json says; the shared bodies in schema/testdata/bodies
// keep the three equal.

/** Limits of the wire format (docs/wire-format.md) and Meta's size limits. */
export const MAX_ID_LENGTH = 128;
export const MAX_METADATA_KEYS = 16;
export const MAX_METADATA_KEY_BYTES = 64;
export const MAX_METADATA_VALUE_BYTES = 512;
/** A job body is at most 64 KiB of UTF-8 JSON. */
export const MAX_JOB_BYTES = 64 * 1024;
/** text.body is at most 4,096 characters. */
export const MAX_TEXT_BODY = 4096;
/** An image, video or document caption is at most 1,024 characters. */
export const MAX_CAPTION = 1024;
/** A business-scoped user ID: "US.", "ENT." for a parent, 128 more. */
export const MAX_USER_ID_LENGTH = 2 + 1 + 4 + 128;

/** The Graph endpoints a job can be posted to. */
export const API_MESSAGES = "messages";
export const API_MARKETING_MESSAGES = "marketing_messages";
export type API = typeof API_MESSAGES | typeof API_MARKETING_MESSAGES;

/** The message.type values the Cloud API accepts (absent means text). */
export const MESSAGE_TYPES = [
  "text", "template", "image", "audio", "video", "document",
  "sticker", "location", "contacts", "interactive", "reaction",
] as const;

/** The product_policy values of the Marketing Messages API. */
export const PRODUCT_POLICIES = ["CLOUD_API_FALLBACK", "STRICT"] as const;

/**
 * A job as the caller gives it. `message` is the Graph API message object
 * exactly as POST /{phone_number_id}/messages takes it.
 */
export interface Job {
  /** The idempotency key; a UUIDv7 is made when it is absent or empty. */
  id?: string;
  phone_number_id: string;
  message: Record<string, unknown>;
  api?: API;
  /** A job still unsent then is parked as expired. */
  not_after?: Date | string;
  /** At most 16 keys; carried into logs, spans and dead-letter entries. */
  metadata?: Record<string, string>;
}

/** What waq reads of a message: exactly one of `to` and `recipient`. */
export interface Summary {
  to?: string;
  recipient?: string;
  type: string;
  template?: string;
  language?: string;
  productPolicy?: string;
}

/** ValidationError names the field of a job that is wrong and how. */
export class ValidationError extends Error {
  readonly field: string;
  readonly problem: string;
  constructor(field: string, problem: string) {
    super(field === "" ? `invalid job: ${problem}` : `invalid job: ${field}: ${problem}`);
    this.name = "ValidationError";
    this.field = field;
    this.problem = problem;
  }
}

const q = (s: string): string => JSON.stringify(s);
const chars = (s: string): number => [...s].length;
const bytes = (s: string): number => Buffer.byteLength(s, "utf8");
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const digits = (s: string): boolean => /^[0-9]+$/.test(s);
const jsonType = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "object" ? "object" : typeof v;

/**
 * decodeJob parses and validates a job body as the worker reads it off the
 * stream, with the Go side's rules; it throws a ValidationError.
 */
export function decodeJob(body: string | Uint8Array): Summary {
  const text = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
  const n = typeof body === "string" ? bytes(body) : body.length;
  if (n > MAX_JOB_BYTES) {
    throw new ValidationError("", `body is ${n} bytes, more than the limit of ${MAX_JOB_BYTES} bytes (64 KiB)`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ValidationError("", `body is not a JSON job object: ${(e as Error).message}`);
  }
  if (v === null) {
    v = {}; // as Go's decoder takes null: every field absent
  }
  if (!isObject(v)) {
    throw new ValidationError("", `body is not a JSON job object: got a JSON ${jsonType(v)}, want an object`);
  }
  for (const f of ["id", "phone_number_id", "api", "not_after"]) {
    const x = v[f];
    if (x !== undefined && x !== null && typeof x !== "string") {
      throw new ValidationError("", `body is not a JSON job object: field ${f}: got a JSON ${jsonType(x)}, want a string`);
    }
  }
  const md = v["metadata"];
  if (md !== undefined && md !== null) {
    if (!isObject(md) || Object.values(md).some((x) => typeof x !== "string" && x !== null)) {
      throw new ValidationError("", "body is not a JSON job object: field metadata: want an object of strings");
    }
  }
  const na = v["not_after"];
  if (typeof na === "string" && !isRFC3339(na)) {
    throw new ValidationError("not_after", `${q(na)} is not an RFC 3339 time like "2026-11-25T18:00:00Z"`);
  }
  return validateFields({
    id: (v["id"] as string | null | undefined) ?? "",
    phone_number_id: (v["phone_number_id"] as string | null | undefined) ?? "",
    message: v["message"],
    api: (v["api"] as string | null | undefined) ?? undefined,
    metadata: (md as Record<string, string> | null | undefined) ?? undefined,
  });
}

/**
 * validateJob checks a job before it is published (the Go producer's
 * Job.Validate) and returns its summary; it throws a ValidationError.
 */
export function validateJob(job: Job): Summary {
  if (!isObject(job)) {
    throw new ValidationError("", "a job is an object");
  }
  for (const f of ["id", "phone_number_id", "api"] as const) {
    if (job[f] !== undefined && typeof job[f] !== "string") {
      throw new ValidationError(f, `want a string, got ${jsonType(job[f])}`);
    }
  }
  const na = job.not_after;
  if (na !== undefined) {
    if (na instanceof Date) {
      if (Number.isNaN(na.getTime())) throw new ValidationError("not_after", "an invalid Date");
    } else if (typeof na !== "string" || !isRFC3339(na)) {
      throw new ValidationError("not_after", `${q(String(na))} is not an RFC 3339 time like "2026-11-25T18:00:00Z"`);
    }
  }
  if (job.metadata !== undefined && (!isObject(job.metadata) || Object.values(job.metadata).some((x) => typeof x !== "string"))) {
    throw new ValidationError("metadata", "want an object of strings");
  }
  return validateFields({
    id: job.id ?? "",
    phone_number_id: job.phone_number_id ?? "",
    message: job.message,
    api: job.api,
    metadata: job.metadata,
  });
}

interface Fields {
  id: string;
  phone_number_id: string;
  message: unknown;
  api: string | undefined;
  metadata: Record<string, string> | undefined;
}

function validateFields(j: Fields): Summary {
  validateID(j.id);
  if (j.phone_number_id === "") {
    throw new ValidationError("phone_number_id", "missing");
  }
  if (!digits(j.phone_number_id) || j.phone_number_id.length > 32) {
    throw new ValidationError("phone_number_id", `${q(j.phone_number_id)} is not a Graph API phone number id (digits only)`);
  }
  if (j.metadata !== undefined) {
    const keys = Object.keys(j.metadata);
    if (keys.length > MAX_METADATA_KEYS) {
      throw new ValidationError("metadata", `${keys.length} keys, at most ${MAX_METADATA_KEYS}`);
    }
    for (const k of keys) {
      if (k === "" || bytes(k) > MAX_METADATA_KEY_BYTES) {
        throw new ValidationError("metadata", `key ${q(k)}: want 1 to 64 characters`);
      }
      if (bytes(j.metadata[k] ?? "") > MAX_METADATA_VALUE_BYTES) {
        throw new ValidationError(`metadata.${k}`, "value longer than 512 bytes or not UTF-8");
      }
    }
  }
  // Unlike Go (which takes "" as the default), an empty api is refused, as
  // the schema refuses it: absent is the default.
  if (j.api !== undefined && j.api !== API_MESSAGES && j.api !== API_MARKETING_MESSAGES) {
    throw new ValidationError("api", `${q(j.api)}; want "messages" or "marketing_messages"`);
  }
  const sum = summarizeMessage(j.message);
  if (j.api === API_MARKETING_MESSAGES) {
    if (sum.type !== "template") {
      throw new ValidationError("api", `marketing_messages sends template messages only, not type ${q(sum.type)}`);
    }
  } else if (sum.productPolicy !== undefined) {
    throw new ValidationError("message.product_policy", 'only the Marketing Messages API takes it; set api to "marketing_messages"');
  }
  return sum;
}

/** validateID checks an idempotency key: 1 to 128 characters, no spaces or control characters. */
export function validateID(id: string): void {
  if (id === "") {
    throw new ValidationError("id", "missing");
  }
  const n = chars(id);
  if (n > MAX_ID_LENGTH) {
    throw new ValidationError("id", `${n} characters, at most ${MAX_ID_LENGTH}`);
  }
  for (const c of id) {
    const cp = c.codePointAt(0)!;
    if (cp <= 0x20 || cp === 0x7f) {
      throw new ValidationError("id", "contains a space or control character");
    }
  }
}

// The message fields waq reads and the JSON type each must have when
// present and not null (Go decodes them into typed fields; null counts as
// absent).
const stringFields = ["messaging_product", "recipient_type", "to", "recipient", "type", "product_policy"];
const objectFields = ["template", "text", "image", "video", "document"];

function typeProblem(field: string, v: unknown, want: string): ValidationError {
  return new ValidationError("message", `field ${field}: got a JSON ${jsonType(v)}, want ${want}`);
}

/** summarizeMessage validates a Graph API message object as far as waq can without Meta. */
export function summarizeMessage(msg: unknown): Summary {
  if (msg === undefined || msg === null) {
    throw new ValidationError("message", "missing");
  }
  if (!isObject(msg)) {
    throw new ValidationError("message", "not a JSON object");
  }
  const m = msg;
  for (const f of stringFields) {
    const v = m[f];
    if (v !== undefined && v !== null && typeof v !== "string") {
      if (f === "to") throw new ValidationError("message.to", 'want a string of digits with country code, like "15551234567"');
      if (f === "recipient") throw new ValidationError("message.recipient", 'want a business-scoped user ID string, like "US.13491208655302741918"');
      throw typeProblem(f, v, "a string");
    }
  }
  for (const f of objectFields) {
    const v = m[f];
    if (v !== undefined && v !== null && !isObject(v)) throw typeProblem(f, v, "an object");
  }
  const str = (o: Record<string, unknown>, f: string, path: string): string => {
    const v = o[f];
    if (v !== undefined && v !== null && typeof v !== "string") throw typeProblem(path, v, "a string");
    return (v as string | null | undefined) ?? "";
  };
  const tpl = m["template"] as Record<string, unknown> | null | undefined;
  let lang: Record<string, unknown> | null | undefined;
  if (tpl) {
    str(tpl, "name", "template.name");
    lang = tpl["language"] as Record<string, unknown> | null | undefined;
    if (lang !== undefined && lang !== null && !isObject(lang)) throw typeProblem("template.language", lang, "an object");
    if (lang) str(lang, "code", "template.language.code");
  }
  const txt = m["text"] as Record<string, unknown> | null | undefined;
  if (txt) str(txt, "body", "text.body");
  for (const f of ["image", "video", "document"]) {
    const o = m[f] as Record<string, unknown> | null | undefined;
    if (o) str(o, "caption", `${f}.caption`);
  }

  const product = (m["messaging_product"] as string | null | undefined) ?? "";
  if (product !== "whatsapp") {
    throw new ValidationError("message.messaging_product", product === "" ? 'missing; want "whatsapp"' : `${q(product)}; want "whatsapp"`);
  }
  const to = m["to"] as string | null | undefined;
  const recipient = m["recipient"] as string | null | undefined;
  const sum: Summary = { type: "" };
  if (to != null && recipient != null) {
    throw new ValidationError("message.recipient", "both to and recipient are set; give exactly one (to for a number, recipient for a business-scoped user ID)");
  } else if (recipient != null) {
    validateUserID(recipient);
    sum.recipient = recipient;
  } else if (to == null) {
    throw new ValidationError("message.to", "missing: give to (digits with country code) or recipient (a business-scoped user ID)");
  } else {
    validateRecipient(to);
    sum.to = to;
  }
  const rt = m["recipient_type"] as string | null | undefined;
  if (rt != null && rt !== "individual") {
    throw new ValidationError("message.recipient_type", `${q(rt)}; want "individual"`);
  }
  // Absent (or null) means text; "" is refused as the schema refuses it.
  const typ = (m["type"] as string | null | undefined) ?? "text";
  if (!(MESSAGE_TYPES as readonly string[]).includes(typ)) {
    throw new ValidationError("message.type", `unknown type ${q(typ)}; want one of ${MESSAGE_TYPES.join(", ")}`);
  }
  if (m[typ] === undefined || m[typ] === null) {
    throw new ValidationError(`message.${typ}`, `missing: a ${typ} message needs a ${q(typ)} object`);
  }
  sum.type = typ;
  if (typ === "text") {
    const n = chars(str(txt!, "body", "text.body"));
    if (n > MAX_TEXT_BODY) {
      throw new ValidationError("message.text.body", `${n} characters, more than Meta's limit of ${MAX_TEXT_BODY}`);
    }
  } else if (typ === "image" || typ === "video" || typ === "document") {
    const n = chars(str(m[typ] as Record<string, unknown>, "caption", `${typ}.caption`));
    if (n > MAX_CAPTION) {
      throw new ValidationError(`message.${typ}.caption`, `${n} characters, more than Meta's limit of ${MAX_CAPTION}`);
    }
  }
  const pp = m["product_policy"] as string | null | undefined;
  if (pp != null) {
    if (!(PRODUCT_POLICIES as readonly string[]).includes(pp)) {
      throw new ValidationError("message.product_policy", `${q(pp)}; want "CLOUD_API_FALLBACK" or "STRICT"`);
    }
    sum.productPolicy = pp;
  }
  if (typ === "template") {
    const name = str(tpl!, "name", "template.name");
    if (name.trim() === "") {
      throw new ValidationError("message.template.name", "missing");
    }
    const code = lang ? str(lang, "code", "template.language.code") : "";
    if (code === "") {
      throw new ValidationError("message.template.language.code", "missing");
    }
    sum.template = name;
    sum.language = code;
  }
  return sum;
}

/** validateRecipient checks a number: digits only, country code first, 8 to 15 digits. */
export function validateRecipient(to: string): void {
  if (to === "") {
    throw new ValidationError("message.to", "missing");
  }
  if (!digits(to)) {
    if (isUserID(to)) {
      throw new ValidationError("message.to", `${q(to)} is a business-scoped user ID, not a number; put it in recipient instead of to`);
    }
    const want = normalizeRecipient(to);
    if (want !== "" && digits(want)) {
      throw new ValidationError("message.to", `${q(to)} is not digits only; write it as ${q(want)} (country code first, no +, spaces or punctuation)`);
    }
    throw new ValidationError("message.to", `${q(to)} is not digits only; write it with country code and nothing else, like "15551234567"`);
  }
  if (to.length < 8 || to.length > 15) {
    throw new ValidationError("message.to", `${q(to)} has ${to.length} digits; a number with country code has 8 to 15, like "15551234567"`);
  }
  if (to[0] === "0") {
    throw new ValidationError("message.to", `${q(to)} starts with 0; start with the country code, like "15551234567"`);
  }
}

const userIDPattern = /^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$/;

/** isUserID reports whether s has the format of a business-scoped user ID (or a parent one, "US.ENT.…"). */
export function isUserID(s: string): boolean {
  return s.length <= MAX_USER_ID_LENGTH && userIDPattern.test(s);
}

/** validateUserID checks a business-scoped user ID, like "US.13491208655302741918". */
export function validateUserID(id: string): void {
  if (id === "") {
    throw new ValidationError("message.recipient", "missing");
  }
  if (isUserID(id)) {
    return;
  }
  if (digits(id) || digits(normalizeRecipient(id))) {
    throw new ValidationError("message.recipient", `${q(id)} looks like a phone number; a number goes in to, recipient takes a business-scoped user ID like "US.13491208655302741918"`);
  }
  throw new ValidationError("message.recipient", `${q(id)} is not a business-scoped user ID; want a two-letter country code in capitals, a dot and 1 to 128 letters and digits, like "US.13491208655302741918" (a parent: "US.ENT.…")`);
}

/** normalizeRecipient strips "+", "00", spaces and punctuation from a number, for a hint. */
export function normalizeRecipient(s: string): string {
  let out = "";
  for (const c of s) {
    if (c >= "0" && c <= "9") out += c;
    else if (!"+-() .".includes(c)) return "";
  }
  if (s.trim().startsWith("00")) out = out.replace(/^00/, "");
  return out;
}

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/;

/** isRFC3339 accepts what Go's time.Parse(time.RFC3339Nano, s) accepts. */
export function isRFC3339(s: string): boolean {
  const m = rfc3339.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const days = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1]! || h > 23 || mi > 59 || se > 59) return false;
  if (m[8] !== "Z" && (Number(m[10]) > 23 || Number(m[11]) > 59)) return false;
  return true;
}
