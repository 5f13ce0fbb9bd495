/**
 * @waqhq/producer publishes waq send jobs (docs/wire-format.md) on NATS JetStream from
 * Node.js, with the Go producer's subject, headers, ids and validation.
 *
 *   const nc = await connect({ servers: "nats://127.0.0.1:4222" });
 *   const producer = new Producer(jetstream(nc));
 *   const { id } = await producer.publish({ phone_number_id: "106540352242922", message: {...} });
 */
export * from "./job.js";
export * from "./producer.js";
export { uuidv7 } from "./uuid.js";
