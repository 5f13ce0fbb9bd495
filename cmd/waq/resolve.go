package main

// Where the commands find NATS, Redis, the stream and the Graph API: one
// order for all of them, so that `waq send`, `waq dlq`, `waq job` and
// `waq doctor` agree with each other and with the worker.

import (
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/worker"
)

// setting is one thing a command must find: its WAQ_* variable, its key in
// the state file of a running `waq dev` ("" when waq dev does not say), and
// its default.
type setting struct {
	env, dev, def string
}

// The settings the commands resolve. The dev keys are also what `waq dev`
// writes (devState).
var (
	natsSetting      = setting{env: "WAQ_NATS_URL", dev: "nats_url", def: queue.DefaultNATSURL}
	redisSetting     = setting{env: "WAQ_REDIS_URL", dev: "redis_url", def: worker.DefaultRedisURL}
	streamSetting    = setting{env: "WAQ_STREAM", dev: "stream", def: queue.DefaultStream}
	graphSetting     = setting{env: "WAQ_GRAPH_URL", dev: "graph_url", def: graph.DefaultBaseURL}
	keyPrefixSetting = setting{env: "WAQ_KEY_PREFIX", def: worker.DefaultKeyPrefix}
	// The token of numbers without a variable of their own; waq dev's
	// worker has one, written to the state file for waq doctor.
	tokenSetting = setting{env: numbers.DefaultTokenEnv, dev: "access_token"}
)

// resolve returns a setting's value: the flag's when it is given (not
// empty), else the WAQ_* variable's, else what a running `waq dev` says,
// else the default.
func resolve(env *Env, s setting, flag string) string {
	if flag != "" {
		return flag
	}
	if v := env.Getenv(s.env); v != "" {
		return v
	}
	if s.dev != "" {
		if v := devSetting(env, s.dev); v != "" {
			return v
		}
	}
	return s.def
}
