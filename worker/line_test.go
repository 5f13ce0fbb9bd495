package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/worker"
)

// lineEnv is a worker's environment with one number at mps 40 whose
// simulator enforces the strict one-second window, and a backlog of jobs
// published before the worker starts: more than the two seconds' worth the
// number's schedule may hold reserved, so most of them wait in the number's
// line.
func lineEnv(t *testing.T, jobs int) (*env, []string, worker.Config) {
	t.Helper()
	e := setup(t)
	sc := e.fake.Scenario()
	sc.Limits.Throughput = fakegraph.Throughput{Enabled: true, MPS: 40, Strict: true}
	if err := e.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range jobs {
		ids = append(ids, fmt.Sprintf("line-%03d", i))
		e.publish(t, textJob(ids[i], fmt.Sprintf("1555200%04d", i)))
	}
	cfg := e.config()
	cfg.PhoneNumbersFile = e.lineConfig(t)
	cfg.AckWait = 30 * time.Second
	return e, ids, cfg
}

func (e *env) lineConfig(t *testing.T) (cfgFile string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "numbers.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("phone_numbers:\n  - {phone_number_id: %q, waba_id: \"9001\", mps: 40}\n", pn)), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// metric is the value of one sample line of a scrape ("" label part
// included in name), 0 when absent.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(scrape(t, url))
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// A backlog of one number waits in the worker's line: every job is sent
// within the window (no 130429), none goes back to JetStream to come round
// again, and the schedule is asked about far less than once a job (each
// waiting job used to ask on its own about once a second).
func TestLineHoldsBacklog(t *testing.T) {
	// Eight seconds at 40 msg/s: two reserved, six in line (more than the
	// four seconds' worth a number's waiting jobs were bounded by).
	const jobs = 300
	e, ids, cfg := lineEnv(t, jobs)
	before := redisCalls(t, e, "time")
	r := e.start(t, cfg)
	e.waitSent(t, 30*time.Second, ids...)
	st := e.fake.Stats(false)
	// A send that reaches the simulator more than the schedule's 30 ms
	// guard after its slot can be answered 130429 on a machine too busy to
	// keep time: one in 200 is what pacing allows itself.
	throttled := st.ByCode[130429]
	if throttled > jobs/200 || st.Duplicates != 0 || st.AcceptedJobs != jobs {
		t.Errorf("simulator: %d accepted jobs of %d, %d answered 130429, %d duplicates", st.AcceptedJobs, jobs, throttled, st.Duplicates)
	}
	// A job answered 130429 goes back to JetStream for a while; no other.
	if n := metric(t, r.url, "waq_redeliveries_total"); n > float64(throttled) {
		t.Errorf("%v redeliveries (%d answered 130429): jobs went back to JetStream instead of waiting in line", n, throttled)
	}
	// Every pacing script run reads Redis's clock once.
	// Leases of 2 at 40 msg/s: about one for two jobs, plus a job's second
	// ask when it came too late to its slot (a busy machine). Jobs that
	// each asked about once a second while they waited made it about 2.3.
	if n := redisCalls(t, e, "time") - before; n >= jobs*3/2 {
		t.Errorf("%d pacing round trips for %d jobs; want fewer than 1.5 a job", n, jobs)
	}
}

// A stop hands the jobs waiting in line back at once (the stop does not
// wait for the line to drain), and another worker sends each of them once.
func TestLineHandedBackOnStop(t *testing.T) {
	const jobs = 200
	e, ids, cfg := lineEnv(t, jobs)
	r := e.start(t, cfg)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := e.fake.Stats(false).AcceptedJobs; n < 10 {
			return fmt.Errorf("%d sent", n)
		}
		return nil
	})
	began := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// What is left takes more than four seconds to send at 40 msg/s; the
	// stop took it back within the send in flight's time.
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("the stop took %s", took)
	}
	if n := e.fake.Stats(false).AcceptedJobs; n > jobs-100 {
		t.Fatalf("%d of %d sent before the stop: the line was not tested", n, jobs)
	}
	e.start(t, cfg)
	e.waitSent(t, 30*time.Second, ids...)
	if st := e.fake.Stats(false); st.Duplicates != 0 || st.ByCode[130429] > jobs/200 {
		t.Errorf("%d duplicate sends, %d answered 130429", st.Duplicates, st.ByCode[130429])
	}
	e.streamEmpty(t, 10*time.Second)
}

// redisCalls is how many times Redis ran a command (INFO commandstats).
func redisCalls(t *testing.T, e *env, cmd string) int {
	t.Helper()
	info, err := e.redis.Client(t).Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
