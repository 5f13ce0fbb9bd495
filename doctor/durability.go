package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// varz is the part of NATS's /varz doctor reads.
type varz struct {
	ServerName string `json:"server_name"`
	Cluster    *struct {
		Name string `json:"name"`
	} `json:"cluster"`
	JetStream *struct {
		Config *struct {
			SyncInterval int64 `json:"sync_interval"`
			SyncAlways   bool  `json:"sync_always"`
		} `json:"config"`
		Meta *struct {
			ClusterSize int `json:"cluster_size"`
		} `json:"meta"`
	} `json:"jetstream"`
}

func (o Options) checkJetStream(ctx context.Context) []Result {
	r := Result{Check: "jetstream"}
	js, err := jetstream.New(o.NATS)
	if err != nil {
		return []Result{{Check: "jetstream", Status: Fail, Detail: err.Error()}}
	}
	s, err := js.Stream(ctx, o.Stream)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("stream %s: %v", o.Stream, err)
		r.Fix = "start a worker once (it creates the stream), or check WAQ_NATS_URL and WAQ_STREAM"
		return []Result{r}
	}
	info, err := s.Info(ctx)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("stream %s: %v", o.Stream, err)
		return []Result{r}
	}
	replicas := info.Config.Replicas
	clustered := o.NATS.ConnectedClusterName() != "" || (info.Cluster != nil && len(info.Cluster.Replicas) > 0)
	r.Status = OK
	r.Detail = fmt.Sprintf("stream %s: %d replica(s), %s storage, %d jobs waiting", o.Stream, replicas, strings.ToLower(info.Config.Storage.String()), info.State.Msgs)
	if info.Config.Storage != jetstream.FileStorage {
		r.Status, r.Fix = Fail, "the stream keeps jobs in memory: a restart loses them; recreate it with file storage"
	}
	if clustered && replicas < 3 && r.Status == OK {
		r.Status, r.Fix = Warn, "in a cluster, set WAQ_STREAM_REPLICAS=3 so that losing one server loses no job"
	}
	out := []Result{r}

	sync := Result{Check: "jetstream_sync"}
	v, src, err := o.readVarz(ctx)
	switch {
	case err != nil:
		sync.Status, sync.Detail = Warn, "could not read the server's sync setting ("+err.Error()+")"
		sync.Fix = "check by hand that the NATS config has jetstream { sync_interval: always }, or give --nats-monitor-url"
	case v.JetStream == nil || v.JetStream.Config == nil:
		sync.Status, sync.Detail = Warn, src+" does not show a JetStream config"
		sync.Fix = "check by hand that the NATS config has jetstream { sync_interval: always }"
	case v.JetStream.Config.SyncAlways:
		sync.Status, sync.Detail = OK, "server "+v.ServerName+" syncs every write to disk (sync_interval: always)"
	default:
		every := time.Duration(v.JetStream.Config.SyncInterval)
		if every == 0 {
			every = 2 * time.Minute
		}
		sync.Status = Warn
		sync.Detail = fmt.Sprintf("server %s syncs to disk every %s: a power failure can lose acknowledged jobs (Jepsen, NATS 2.12, 2025)", v.ServerName, every)
		sync.Fix = "set jetstream { sync_interval: always } in every server's config (deploy/nats/)"
	}
	return append(out, sync)
}

func (o Options) readVarz(ctx context.Context) (varz, string, error) {
	u := o.NATSMonitorURL
	if u == "" {
		host := o.NATS.ConnectedAddr()
		if h, _, ok := strings.Cut(host, ":"); ok {
			host = h
		}
		if host == "" {
			return varz{}, "", errors.New("not connected")
		}
		u = "http://" + host + ":8222"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(u, "/")+"/varz", nil)
	if err != nil {
		return varz{}, u, err
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return varz{}, u, fmt.Errorf("no monitoring endpoint at %s", u)
	}
	defer resp.Body.Close()
	var v varz
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return varz{}, u, fmt.Errorf("%s/varz: %v", u, err)
	}
	return v, u, nil
}

func (o Options) checkRedis(ctx context.Context) Result {
	r := Result{Check: "redis"}
	aof, replicas, err := redisDurability(ctx, o.Redis)
	if err != nil {
		r.Status, r.Detail = Fail, "Redis does not answer: "+err.Error()
		r.Fix = "check WAQ_REDIS_URL"
		return r
	}
	r.Detail = fmt.Sprintf("AOF %s, %d replica(s)", onOff(aof), replicas)
	switch {
	case aof:
		r.Status = OK
	case replicas > 0:
		r.Status = OK
		r.Detail += " (no AOF: a failover keeps the data, a full restart does not)"
	default:
		r.Status = Warn
		r.Fix = "turn on appendonly yes (deploy/redis/redis.conf) or run a replica: a Redis restart would lose the sent records and the dead-letter store"
	}
	return r
}

// redisDurability reads AOF and replica counts (the least of every master
// in a cluster).
func redisDurability(ctx context.Context, rdb redis.UniversalClient) (aof bool, replicas int, err error) {
	read := func(c *redis.Client) (bool, int, error) {
		info, err := c.Info(ctx, "persistence", "replication").Result()
		if err != nil {
			return false, 0, err
		}
		return infoField(info, "aof_enabled") == "1", atoi(infoField(info, "connected_slaves")), nil
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		aof = true
		replicas = 1 << 30
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			a, n, err := read(c)
			aof = aof && a
			replicas = min(replicas, n)
			return err
		})
		return aof, replicas, err
	}
	if c, ok := rdb.(*redis.Client); ok {
		return read(c)
	}
	return false, 0, errors.New("unsupported redis client")
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
