// Command waq sends WhatsApp messages reliably: `waq worker` delivers jobs
// from NATS JetStream to the Graph API, `waq send` enqueues one, `waq dlq`
// operates the dead-letter store, `waq fakegraph` simulates Meta, `waq dev`
// runs it all on one machine.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: run gets the arguments after its name.
type command struct {
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands is filled by each subcommand's file in an init function.
var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, env *Env, args []string) error) {
	commands[name] = command{summary: summary, run: run}
}

// Env is what a subcommand talks to: its streams and its environment, so
// that tests can run commands in process.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
	Getenv func(string) string
}

// usageError is bad usage: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries an exit status without a message of its own (the
// command has printed what it had to say).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signalContext()
	defer stop()
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}
	os.Exit(run(ctx, env, os.Args[1:]))
}

// signalContext is cancelled on the first SIGINT or SIGTERM; a second one
// exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "waq: second signal, exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// run runs one command line and returns the exit status: 0 ok, 1 failed,
// 2 bad usage.
func run(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 {
		printUsage(env.Stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printUsage(env.Stdout)
		return 0
	case "-version", "--version", "version":
		fmt.Fprintln(env.Stdout, versionLine())
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "waq: unknown command %q (waq help lists them)\n", args[0])
		return 2
	}
	err := cmd.run(ctx, env, args[1:])
	return exitStatus(env.Stderr, args[0], err)
}

func exitStatus(stderr io.Writer, name string, err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "waq %s: %s\n", name, oneLine(ue.msg))
		return 2
	}
	fmt.Fprintf(stderr, "waq %s: %s\n", name, oneLine(err.Error()))
	return 1
}

// oneLine keeps an error to one line, as operators read it in a log.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "waq sends WhatsApp messages reliably through NATS JetStream and the Graph API.")
	fmt.Fprintln(w, "\nUsage: waq COMMAND [flags]   (waq COMMAND -h for its flags; waq --version)\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nExit status: 0 done, 1 failed (or not found), 2 bad usage. Commands that print take --json.")
}

// usageSink is a flag set's output: what the flag package writes (an
// error, then the usage) is held until parseFlags knows whether it is
// help, for stdout, or a mistake, for stderr.
type usageSink struct {
	stdout, stderr io.Writer
	buf            bytes.Buffer
}

func (u *usageSink) Write(p []byte) (int, error) { return u.buf.Write(p) }

// flush sends what was held to w.
func (u *usageSink) flush(w io.Writer) {
	_, _ = w.Write(u.buf.Bytes())
	u.buf.Reset()
}

// newFlags returns a flag set for a subcommand: -h prints its usage on
// stdout, a bad flag its error and usage on stderr.
func newFlags(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("waq "+name, flag.ContinueOnError)
	fs.SetOutput(&usageSink{stdout: env.Stdout, stderr: env.Stderr})
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: waq %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; a bad flag (already reported by the flag set)
// becomes exit status 2, -h exit status 0.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	sink, _ := fs.Output().(*usageSink)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		if sink != nil {
			sink.flush(sink.stdout)
		}
		return &exitError{code: 0}
	default:
		if sink != nil {
			sink.flush(sink.stderr)
		}
		return &exitError{code: 2}
	}
}

// interspersed parses flags before, between and after positional
// arguments ("dlq replay ID1 ID2 --dry-run", "policy explain 131000 --json"), since the flag
// package stops at the first positional one; "--" ends the flags.
func interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for rounds := len(args); rounds >= 0; rounds-- {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
