// Package devenv starts the servers waq runs against, on one machine and on
// loopback addresses only, for `waq dev` and `waq bench`: an embedded NATS
// server with JetStream, a Redis (a redis-server child process when one is
// on PATH, an in-process Redis-compatible server otherwise), and the Graph
// API simulator. Everything it starts is stopped, and every directory it
// made removed, by the Close of what started it.
package devenv

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Loopback is the only host devenv listens on.
const Loopback = "127.0.0.1"

// PickPort returns preferred when it is free on loopback (so that the
// commands `waq dev` prints stay short), otherwise a free port. With
// preferred 0 it always returns a free port.
func PickPort(preferred int) (int, error) {
	if preferred > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort(Loopback, strconv.Itoa(preferred))); err == nil {
			l.Close()
			return preferred, nil
		}
	}
	l, err := net.Listen("tcp", Loopback+":0")
	if err != nil {
		return 0, fmt.Errorf("no free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Listen listens on preferred when it is free, otherwise on a free port.
func Listen(preferred int) (net.Listener, error) {
	if preferred > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort(Loopback, strconv.Itoa(preferred))); err == nil {
			return l, nil
		}
	}
	return net.Listen("tcp", Loopback+":0")
}

// NATSOptions configure StartNATS.
type NATSOptions struct {
	// Port is the preferred port; 0 picks a free one.
	Port int
	// StoreDir holds JetStream's files; required.
	StoreDir string
	// SyncAlways makes JetStream sync every write to disk, as production
	// should (SPEC §2); off, it syncs every two minutes (the server's
	// default) and is faster on slow disks.
	SyncAlways bool
	// Monitor serves the monitoring endpoint (/varz, where waq doctor reads
	// the sync setting) on a free loopback port.
	Monitor bool
}

// NATS is an embedded NATS server with JetStream.
type NATS struct {
	Server *server.Server
	URL    string
	// MonitorURL is the monitoring endpoint (http://127.0.0.1:PORT) when
	// NATSOptions.Monitor asked for it, else "".
	MonitorURL string
}

// StartNATS starts an embedded NATS server with JetStream on loopback.
func StartNATS(opts NATSOptions) (*NATS, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("nats: no store directory")
	}
	var lastErr error
	// A preferred port may be taken between PickPort and the server's
	// listen; then try a free one.
	for _, pref := range []int{opts.Port, 0} {
		port, err := PickPort(pref)
		if err != nil {
			return nil, err
		}
		so := &server.Options{
			Host:       Loopback,
			Port:       port,
			JetStream:  true,
			StoreDir:   opts.StoreDir,
			NoLog:      true,
			NoSigs:     true,
			SyncAlways: opts.SyncAlways,
			// Jobs are small; the default 1 MB is plenty, the default
			// write deadline too short for a 2-core machine under load.
			WriteDeadline: 10 * time.Second,
		}
		if opts.Monitor {
			so.HTTPHost, so.HTTPPort = Loopback, server.RANDOM_PORT
		}
		s, err := server.NewServer(so)
		if err != nil {
			return nil, fmt.Errorf("nats server: %w", err)
		}
		go s.Start()
		if s.ReadyForConnections(10 * time.Second) {
			n := &NATS{Server: s, URL: s.ClientURL()}
			if a := s.MonitorAddr(); a != nil {
				n.MonitorURL = "http://" + a.String()
			}
			return n, nil
		}
		s.Shutdown()
		s.WaitForShutdown()
		lastErr = fmt.Errorf("nats server did not start on port %d", port)
	}
	return nil, lastErr
}

// Close stops the server and waits for it.
func (n *NATS) Close() {
	if n == nil || n.Server == nil {
		return
	}
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
}
