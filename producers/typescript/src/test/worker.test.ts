// End to end: the TypeScript producer publishes on a real nats-server
// (Debian's, JetStream on, a temporary store), and a real `waq worker`
// delivers the job to `waq fakegraph`, the Graph API simulator, recording it
// in a real redis-server. Every service is a child process on a free
// loopback port and is stopped at the end.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Producer, ValidationError, decodeJob, HEADER_MSG_ID } from "../index.js";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "waq-ts-"));
const children: Array<{ name: string; proc: ChildProcess; log: string }> = [];
const PHONE = "106540352242922";
const APP_SECRET = "ts-app-secret";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

function start(name: string, cmd: string, args: string[], env: Record<string, string> = {}): void {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, "a");
  const proc = spawn(cmd, args, { stdio: ["ignore", fd, fd], env: { ...process.env, ...env } });
  children.push({ name, proc, log });
}

function logs(): string {
  return children.map((c) => `--- ${c.name} (${c.log})\n${existsSync(c.log) ? readFileSync(c.log, "utf8").slice(-2000) : ""}`).join("\n");
}

/** waitFor polls cond every 50 ms until it returns a value or the deadline passes. */
async function waitFor<T>(what: string, timeoutMs: number, cond: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    for (const c of children) {
      if (c.proc.exitCode !== null) throw new Error(`${c.name} exited with ${c.proc.exitCode} while waiting for ${what}\n${logs()}`);
    }
    try {
      const v = await cond();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})\n${logs()}`);
}

async function getJSON(url: string): Promise<unknown> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function whichOrFail(names: string[], hint: string): string {
  for (const n of names) {
    if (n.includes("/") ? existsSync(n) : tryWhich(n)) return n;
  }
  throw new Error(`none of ${names.join(", ")} found: ${hint}`);
}

function tryWhich(n: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${n}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

let nc: NatsConnection;
let producer: Producer;
let fakegraph: string;
let waq: string;
let redisURL: string;

before(async () => {
  const natsServer = whichOrFail([process.env["NATS_SERVER"] ?? "/usr/sbin/nats-server", "nats-server"], "apt-get install nats-server");
  const redisServer = whichOrFail(["redis-server"], "apt-get install redis-server");
  waq = process.env["WAQ_BIN"] ?? join(dir, "waq");
  if (!process.env["WAQ_BIN"]) {
    execFileSync("go", ["build", "-o", waq, "./cmd/waq"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  }
  const [natsPort, redisPort, graphPort, httpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  start("nats-server", natsServer, ["-js", "-sd", join(dir, "jetstream"), "-a", "127.0.0.1", "-p", String(natsPort)]);
  start("redis-server", redisServer, ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir]);
  // The simulator signs a status webhook (sent, delivered) for each send
  // and posts it to the worker, which finds the job by its wamid.
  start("fakegraph", waq, ["fakegraph", "--addr", `127.0.0.1:${graphPort}`, "--webhook-url", `http://127.0.0.1:${httpPort}/webhook`, "--app-secret", APP_SECRET]);
  fakegraph = `http://127.0.0.1:${graphPort}`;
  redisURL = `redis://127.0.0.1:${redisPort}/0`;
  await waitFor("fakegraph", 20_000, async () => getJSON(`${fakegraph}/_fake/stats`));
  nc = await waitFor("nats-server", 20_000, async () => connect({ servers: `nats://127.0.0.1:${natsPort}`, reconnect: false }));
  start("worker", waq, ["worker"], {
    WAQ_NATS_URL: `nats://127.0.0.1:${natsPort}`,
    WAQ_REDIS_URL: redisURL,
    WAQ_GRAPH_URL: fakegraph,
    WAQ_ACCESS_TOKEN: "ts-test-token",
    WAQ_HTTP_ADDR: `127.0.0.1:${httpPort}`,
    WAQ_LOG_FORMAT: "text",
    WAQ_SHUTDOWN_TIMEOUT: "5s",
    WAQ_APP_SECRET: APP_SECRET,
    WAQ_WEBHOOK_VERIFY_TOKEN: "ts-verify",
  });
  // Ready means the stream and the consumer exist, and Redis answers.
  await waitFor("worker /readyz", 60_000, async () => ((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok ? true : undefined));
  producer = new Producer(jetstream(nc));
});

after(async () => {
  await nc?.close();
  // The worker first (a graceful stop), then what it needs.
  for (const c of [...children].reverse()) {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
    const done = new Promise((r) => c.proc.once("exit", r));
    c.proc.kill("SIGTERM");
    const t = setTimeout(() => c.proc.kill("SIGKILL"), 10_000);
    await done;
    clearTimeout(t);
  }
  rmSync(dir, { recursive: true, force: true });
});

// The stream is a work queue: the worker's ack removes a job at once, so
// the test reads what was published off a plain subscription to the
// subjects, which sees every publish as it goes to the stream.
async function tap(): Promise<{ sub: Subscription; next: () => Promise<Msg> }> {
  const sub = nc.subscribe("waq.send.>");
  await nc.flush();
  const it = sub[Symbol.asyncIterator]();
  const next = async (): Promise<Msg> => {
    const t = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no message on waq.send.> within 10 s")), 10_000).unref());
    const r = await Promise.race([it.next(), t]);
    if (r.done) throw new Error("subscription closed");
    return r.value;
  };
  return { sub, next };
}

type JobStats = { sends: number; accepted: number; wamids: string[] | null };

async function accepted(id: string): Promise<JobStats> {
  return waitFor(`fakegraph to accept ${id}`, 30_000, async () => {
    const js = (await getJSON(`${fakegraph}/_fake/jobs/${encodeURIComponent(id)}`)) as JobStats;
    return js.accepted >= 1 ? js : undefined;
  });
}

test("a job published from TypeScript is sent by the worker, with the Go producer's subject, headers and id", async () => {
  const traceID = "4bf92f3577b34da6a3ce929d0e0e4736";
  const traceparent = `00-${traceID}-00f067aa0ba902b7-01`;
  const { sub, next } = await tap();
  const pub = await producer.publish(
    {
      phone_number_id: PHONE,
      message: {
        messaging_product: "whatsapp",
        to: "15551234567",
        type: "template",
        template: { name: "order_update", language: { code: "en_US" }, components: [{ type: "body", parameters: [{ type: "text", text: "42" }] }] },
      },
      metadata: { tenant: "acme", campaign: "ts" },
    },
    { traceparent, tracestate: "waq=ts" },
  );
  assert.match(pub.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "a UUIDv7 id");
  assert.equal(pub.subject, `waq.send.${PHONE}`);
  assert.equal(pub.duplicate, false);

  // What went to the stream is what the Go producer would have written.
  const sm = await next();
  sub.unsubscribe();
  assert.equal(sm.subject, `waq.send.${PHONE}`);
  assert.ok(sm.headers, "headers");
  assert.equal(sm.headers.get(HEADER_MSG_ID), pub.id);
  assert.equal(sm.headers.get("traceparent"), traceparent);
  assert.equal(sm.headers.get("tracestate"), "waq=ts");
  const body = new TextDecoder().decode(sm.data);
  assert.equal(decodeJob(body).template, "order_update");
  assert.equal(JSON.parse(body).id, pub.id);

  // The simulator accepted exactly one send of this job...
  const seen = await accepted(pub.id);
  assert.equal(seen.sends, 1);
  assert.equal(seen.accepted, 1);
  // ...and the worker recorded it as sent under that wamid, in the trace
  // the producer gave. The ledger keeps a digest of a first-try send's
  // wamid, not the wamid: the simulator's "delivered" webhook for that
  // wamid reaching this job's record is what shows the worker kept it.
  assert.equal(seen.wamids?.length, 1, "one wamid");
  type Shown = { outcome: string; wamid?: string; status?: string; trace_id?: string };
  const shown = await waitFor("waq job show: sent, status delivered", 30_000, async () => {
    const out = execFileSync(waq, ["job", "show", pub.id, "--json"], { env: { ...process.env, WAQ_REDIS_URL: redisURL } });
    const s = JSON.parse(out.toString()) as Shown;
    return s.outcome === "sent" && s.status === "delivered" ? s : undefined;
  });
  if (shown.wamid !== undefined) assert.equal(shown.wamid, seen.wamids?.[0]);
  assert.equal(shown.trace_id, traceID, "the worker continued the producer's trace");
});

test("the same id twice is stored once and sent once", async () => {
  const text = (body: string) => ({ messaging_product: "whatsapp", to: "15551234567", text: { body } });
  const job = { id: `ts-dup-${Date.now()}`, phone_number_id: PHONE, message: text("once") };
  const first = await producer.publish(job);
  const again = await producer.publish(job);
  assert.equal(first.duplicate, false);
  assert.equal(again.duplicate, true, "JetStream dropped the second publish");
  await accepted(job.id);
  // A later job through the same worker, then the count of the first.
  const barrier = await producer.publish({ phone_number_id: PHONE, message: text("after") });
  await accepted(barrier.id);
  const seen = (await getJSON(`${fakegraph}/_fake/jobs/${encodeURIComponent(job.id)}`)) as JobStats;
  assert.equal(seen.sends, 1);
});

test("a bad job or trace context is refused before anything is published", async () => {
  const { sub, next } = await tap();
  const good = { phone_number_id: PHONE, message: { messaging_product: "whatsapp", to: "15551234567", text: { body: "x" } } };
  await assert.rejects(producer.publish({ ...good, message: { ...good.message, to: "+1 555 123 4567" } }), (e: unknown) => e instanceof ValidationError && e.field === "message.to");
  await assert.rejects(producer.publish({ ...good, phone_number_id: "acme" }), ValidationError);
  await assert.rejects(producer.publish({ ...good, message: { ...good.message, text: { body: "x".repeat(70_000) } } }), ValidationError);
  await assert.rejects(producer.publish(good, { traceparent: "00-xyz-01" }), TypeError);
  await assert.rejects(producer.publish(good, { traceparent: `00-${"0".repeat(32)}-00f067aa0ba902b7-01` }), TypeError);
  await assert.rejects(producer.publish(good, { tracestate: "a=b" }), TypeError);
  // One connection's publishes arrive in order: the first message seen
  // after the refusals is this good one.
  const ok = await producer.publish(good);
  const m = await next();
  sub.unsubscribe();
  assert.equal(m.headers?.get(HEADER_MSG_ID), ok.id);
});
