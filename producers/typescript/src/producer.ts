import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { MAX_JOB_BYTES, ValidationError, validateJob, type Job } from "./job.js";
import { uuidv7 } from "./uuid.js";

/** The subject prefix of jobs: a job for number P goes on waq.send.P. */
export const DEFAULT_SUBJECT_PREFIX = "waq.send";
/** JetStream's de-duplication header; it carries the job id. */
export const HEADER_MSG_ID = "Nats-Msg-Id";

export interface ProducerOptions {
  /** Defaults to "waq.send" (the worker's WAQ_STREAM subjects are waq.send.>). */
  subjectPrefix?: string;
}

export interface PublishOptions {
  /** A W3C traceparent ("00-<trace id>-<span id>-<flags>"): the worker's spans join this trace. */
  traceparent?: string;
  /** The W3C tracestate that goes with traceparent. */
  tracestate?: string;
  /** Milliseconds to wait for JetStream's acknowledgement (the client's default when absent). */
  timeout?: number;
}

export interface Published {
  /** The job id: the caller's, or the UUIDv7 made for it. */
  id: string;
  subject: string;
  /** True when the stream already held this id: the job is one send. */
  duplicate: boolean;
  seq: number;
}

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * Producer publishes waq jobs on JetStream as the Go producer
 * (queue.Producer) does: validated, on waq.send.<phone_number_id>, with
 * Nats-Msg-Id set to the job id (a UUIDv7 when there is none) and the trace
 * context in traceparent / tracestate.
 */
export class Producer {
  readonly #js: JetStreamClient;
  readonly #prefix: string;

  constructor(js: JetStreamClient, opts: ProducerOptions = {}) {
    this.#js = js;
    this.#prefix = opts.subjectPrefix || DEFAULT_SUBJECT_PREFIX;
  }

  /**
   * publish validates job and resolves once JetStream has stored it;
   * publishing the same id twice within the stream's duplicate window
   * stores one message. A bad job rejects with a ValidationError before
   * anything is sent.
   */
  async publish(job: Job, opts: PublishOptions = {}): Promise<Published> {
    const id = job.id || uuidv7();
    const withID: Job = { ...job, id };
    validateJob(withID);
    const data = encodeJob(withID);
    if (data.length > MAX_JOB_BYTES) {
      throw new ValidationError("", `body is ${data.length} bytes, more than the limit of ${MAX_JOB_BYTES} bytes (64 KiB)`);
    }
    const h = headers();
    h.set(HEADER_MSG_ID, id);
    if (opts.traceparent !== undefined) {
      const m = traceparentPattern.exec(opts.traceparent);
      if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) {
        throw new TypeError(`traceparent ${JSON.stringify(opts.traceparent)} is not a W3C trace context like "00-<32 hex>-<16 hex>-01"`);
      }
      h.set("traceparent", opts.traceparent);
      if (opts.tracestate) h.set("tracestate", opts.tracestate);
    } else if (opts.tracestate) {
      throw new TypeError("tracestate without traceparent");
    }
    const subject = `${this.#prefix}.${withID.phone_number_id}`;
    const ack: PubAck = await this.#js.publish(subject, data, {
      msgID: id,
      headers: h,
      ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
    });
    return { id, subject, duplicate: ack.duplicate, seq: ack.seq };
  }
}

/** encodeJob is the body as the Go producer writes it: fields in its order, empty ones left out. */
export function encodeJob(job: Job): Uint8Array {
  const out: Record<string, unknown> = {
    id: job.id,
    phone_number_id: job.phone_number_id,
    message: job.message,
  };
  if (job.api) out["api"] = job.api;
  if (job.not_after !== undefined) {
    out["not_after"] = job.not_after instanceof Date ? job.not_after.toISOString() : job.not_after;
  }
  if (job.metadata && Object.keys(job.metadata).length > 0) out["metadata"] = job.metadata;
  return new TextEncoder().encode(JSON.stringify(out));
}
