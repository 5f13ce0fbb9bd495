import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { decodeJob, encodeJob, isRFC3339, uuidv7, validateJob, ValidationError, type Job } from "../index.js";

// The bodies Go's queue.Decode and schema/job.schema.json are checked
// against (schema/schema_test.go): the TypeScript validator must judge
// every one the same, with no exceptions.
const bodies = fileURLToPath(new URL("../../../../schema/testdata/bodies/", import.meta.url));

for (const dir of ["good", "bad"] as const) {
  const files = readdirSync(join(bodies, dir)).filter((f) => f.endsWith(".json")).sort();
  test(`shared ${dir} bodies are there`, () => {
    assert.ok(files.length >= (dir === "good" ? 15 : 40), `${files.length} files in ${dir}`);
  });
  for (const f of files) {
    test(`${dir}/${f}`, () => {
      const data = readFileSync(join(bodies, dir, f));
      if (dir === "good") {
        decodeJob(data);
      } else {
        assert.throws(() => decodeJob(data), ValidationError);
      }
    });
  }
}

const text = (to = "15551234567"): Record<string, unknown> => ({
  messaging_product: "whatsapp", to, type: "text", text: { body: "hi" },
});

test("errors name the field, as Go's do", () => {
  const cases: Array<[Job, string, RegExp]> = [
    [{ phone_number_id: "1", message: text("+1 (555) 123-4567") }, "message.to", /write it as "15551234567"/],
    [{ phone_number_id: "1", message: text("US.13491208655302741918") }, "message.to", /put it in recipient/],
    [{ phone_number_id: "abc", message: text() }, "phone_number_id", /digits only/],
    [{ id: "a b", phone_number_id: "1", message: text() }, "id", /space/],
    [{ phone_number_id: "1", message: { ...text(), text: { body: "é".repeat(4097) } } }, "message.text.body", /4097 characters, more than Meta's limit of 4096/],
    [{ phone_number_id: "1", api: "marketing_messages", message: text() }, "api", /template messages only/],
    [{ phone_number_id: "1", message: text(), not_after: "tomorrow" }, "not_after", /RFC 3339/],
    [{ phone_number_id: "1", message: text(), not_after: new Date(NaN) }, "not_after", /invalid Date/],
  ];
  for (const [job, field, problem] of cases) {
    assert.throws(() => validateJob({ id: "j", ...job }), (e: unknown) => {
      assert.ok(e instanceof ValidationError, String(e));
      assert.equal(e.field, field);
      assert.match(e.message, problem);
      return true;
    });
  }
});

test("a job with a Date not_after encodes as the Go producer does", () => {
  const job: Job = { id: "j", phone_number_id: "1", message: text(), not_after: new Date(Date.UTC(2026, 10, 25, 18)), metadata: {} };
  const body = new TextDecoder().decode(encodeJob(job));
  assert.equal(body, '{"id":"j","phone_number_id":"1","message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}},"not_after":"2026-11-25T18:00:00.000Z"}');
  assert.equal(decodeJob(body).to, "15551234567");
});

test("RFC 3339 as Go parses it", () => {
  for (const ok of ["2026-11-25T18:00:00Z", "2024-02-29T23:59:59.123456789+05:30", "2026-01-01T00:00:00-08:00"]) {
    assert.ok(isRFC3339(ok), ok);
  }
  for (const bad of ["2026-11-25", "2026-11-25 18:00:00Z", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T18:00:00", "2026-11-25t18:00:00z"]) {
    assert.ok(!isRFC3339(bad), bad);
  }
});

test("uuidv7: version 7, variant 10, the time in the first 48 bits, unique", () => {
  const now = Date.UTC(2026, 11, 3, 12, 0, 0);
  const id = uuidv7(now);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(parseInt(id.replace(/-/g, "").slice(0, 12), 16), now);
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) seen.add(uuidv7());
  assert.equal(seen.size, 1000);
  assert.throws(() => uuidv7(-1), RangeError);
  assert.throws(() => uuidv7(2 ** 48), RangeError);
});
