package httpsrv

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
)

func TestBodyDeadline(t *testing.T) {
	t.Parallel()
	slow := make(chan struct{})
	h := http.NewServeMux()
	h.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "cut", http.StatusRequestTimeout)
			return
		}
	})
	// A handler that reads its small body, then streams for longer than
	// the body deadline: it must not be cut.
	h.HandleFunc("POST /stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		rc := http.NewResponseController(w)
		for i := 0; i < 5; i++ {
			select {
			case <-r.Context().Done():
				close(slow)
				return
			case <-time.After(100 * time.Millisecond):
			}
			fmt.Fprintln(w, i)
			_ = rc.Flush()
		}
	})
	srv := New(h, Timeouts{Body: 300 * time.Millisecond}, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	if took := testenv.Trickle(t, l.Addr().String(), "POST", "/read", 50*time.Millisecond, 5*time.Second); took > 2*time.Second {
		t.Errorf("a trickled body held the connection %v (deadline 300ms)", took)
	}
	res, err := http.Post("http://"+l.Addr().String()+"/stream", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	select {
	case <-slow:
		t.Fatal("a handler that read its body was cancelled by the body deadline")
	default:
	}
	if strings.Count(string(b), "\n") != 5 {
		t.Errorf("stream cut: %q", b)
	}
}
