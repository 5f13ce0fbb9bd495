package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// Trickle opens a connection to addr, sends headers announcing a body of
// a million bytes and then one byte every interval, and returns how long
// it took the server to answer or hang up (bounded by limit).
func Trickle(t *testing.T, addr, method, path string, interval, limit time.Duration) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n", method, path)
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, bufio.NewReader(c)) // the answer, then EOF or an error
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for time.Since(start) < limit {
		select {
		case <-gone:
			return time.Since(start)
		case <-tick.C:
			if _, err := c.Write([]byte("a")); err != nil {
				<-gone
				return time.Since(start)
			}
		}
	}
	return time.Since(start)
}
