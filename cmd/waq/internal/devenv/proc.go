package devenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ProcStats is what Linux's /proc says of one process.
type ProcStats struct {
	// CPU is user plus system time since the process started.
	CPU time.Duration
	// RSS is the resident memory now; PeakRSS its high-water mark (VmHWM)
	// since the start or the last ResetPeak.
	RSS, PeakRSS int64
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTick = 100

// ReadProc reads the CPU time and memory of process pid (0: this one).
func ReadProc(pid int) (ProcStats, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	var ps ProcStats
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return ps, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields from the last ")".
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ps, errors.New("proc stat: no command name")
	}
	f := bytes.Fields(stat[i+1:])
	// After the name: state(3) ... utime(14) stime(15): indexes 11 and 12.
	if len(f) < 13 {
		return ps, fmt.Errorf("proc stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return ps, errors.New("proc stat: utime or stime is not a number")
	}
	ps.CPU = time.Duration(ut+st) * time.Second / clockTick
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return ps, err
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(k) {
		case "VmHWM":
			ps.PeakRSS = kb(v)
		case "VmRSS":
			ps.RSS = kb(v)
		}
	}
	return ps, nil
}

func kb(v []byte) int64 {
	f := bytes.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return n * 1024
}

// ResetPeak resets the peak resident memory (VmHWM) of process pid (0: this
// one) to its current resident memory, so that a later ReadProc gives the
// peak of what happened in between. It needs the right to write the
// process's clear_refs: this process and its own children.
func ResetPeak(pid int) error {
	p := "/proc/self/clear_refs"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/clear_refs"
	}
	return os.WriteFile(p, []byte("5"), 0)
}

// Terminate asks child process p to stop (SIGTERM) and returns once it has
// exited (done is closed by whoever waits for it), killing it if it has not
// within grace.
func Terminate(p *os.Process, done <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	AwaitOrKill(p, done, grace)
}

// AwaitOrKill returns once p has exited (done is closed), killing it if it
// has not within grace.
func AwaitOrKill(p *os.Process, done <-chan struct{}, grace time.Duration) {
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Kill()
		<-done
	}
}
