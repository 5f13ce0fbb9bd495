// Package schema holds job.schema.json, waq's wire format (SPEC §1) as a
// JSON Schema (draft 2020-12), for producers that are not written in Go.
// The Go validator (queue.Decode) is the reference: schema_test.go checks
// that it and the schema agree on every body in testdata/bodies, and the
// TypeScript producer's tests run the same bodies through its validator.
package schema

import _ "embed"

// JobSchema is job.schema.json.
//
//go:embed job.schema.json
var JobSchema []byte

// JobSchemaID is the schema's $id.
const JobSchemaID = "https://github.com/waqhq/waq/schema/job.schema.json"

// MaxBodyBytes is the limit on a job body that JSON Schema cannot say:
// a validator checks it before the schema (SPEC §1: 64 KiB).
const MaxBodyBytes = 64 << 10
