// Package cli is what the two binaries share of their command line: the
// exit codes scripts can rely on, the help text (commands, flags, the
// environment variables read from the configuration by reflection,
// examples) and progress lines on a terminal.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pgbq/pgbq/internal/config"
)

// Exit codes.
const (
	ExitOK       = 0 // done
	ExitFailure  = 1 // a runtime failure (a service unreachable, a query failed, …)
	ExitUsage    = 2 // a bad command line or configuration
	ExitMismatch = 3 // verify found differences; check found an unsyncable table
)

// ExitCodes is the planner's help text's table of exit codes.
const ExitCodes = `Exit codes:
  0  ok
  1  runtime failure
  2  usage or configuration error
  3  verification mismatch (verify) or unsyncable table (check)
`

// LoaderExitCodes is the loader's: it never compares dates, so never
// exits 3 (a date that fails is recorded failed; --date exits 1).
const LoaderExitCodes = `Exit codes:
  0  ok
  1  runtime failure (with --date: a table's date failed)
  2  usage or configuration error
`

// Version is set at build time: -ldflags "-X github.com/pgbq/pgbq/internal/cli.Version=…".
var Version = "dev"

// codedError carries an exit code.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// Usage marks err as a usage or configuration error (exit 2).
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: ExitUsage, err: err}
}

// Usagef is Usage(fmt.Errorf(…)).
func Usagef(format string, args ...any) error { return Usage(fmt.Errorf(format, args...)) }

// Mismatch marks err as a verification failure (exit 3).
func Mismatch(err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: ExitMismatch, err: err}
}

// Code is the exit code for err: 0 for nil and for flag.ErrHelp (help was
// asked for and printed).
func Code(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var c *codedError
	if errors.As(err, &c) {
		return c.code
	}
	return ExitFailure
}

// Exit prints err (unless it is help) to stderr prefixed by the program's
// name and exits with its code.
func Exit(prog string, err error) {
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		if Code(err) == ExitUsage {
			fmt.Fprintf(os.Stderr, "run %s -h for help\n", prog)
		}
	}
	os.Exit(Code(err))
}

// Command is one subcommand in the help text.
type Command struct {
	Name    string // "" is the default command
	Summary string
	Flags   *flag.FlagSet
}

// Parse parses args with fs, silencing the flag package's own output: a
// bad flag is a usage error, -h/--help is flag.ErrHelp, and arguments left
// over are a usage error unless extra allows that many.
func Parse(fs *flag.FlagSet, args []string, extra int) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return Usage(err)
	}
	if fs.NArg() > extra {
		return Usagef("unexpected arguments %q", fs.Args()[extra:])
	}
	return nil
}

// Help writes a program's help: what it is, its commands and their flags,
// the environment variables of cfg (a pointer to its configuration
// struct), its exit codes and examples.
func Help(w io.Writer, prog, about string, global *flag.FlagSet, cmds []Command, cfg any, exitCodes, examples string) {
	fmt.Fprintf(w, "%s (pgbq %s): %s\n\nUsage:\n", prog, Version, about)
	fmt.Fprintf(w, "  %s [flags] [command] [command flags]\n\n", prog)
	if global != nil {
		fmt.Fprintln(w, "Flags:")
		writeFlags(w, global)
		fmt.Fprintln(w)
	}
	if len(cmds) > 0 {
		fmt.Fprintln(w, "Commands:")
		for _, c := range cmds {
			name := c.Name
			if name == "" {
				name = "(none)"
			}
			fmt.Fprintf(w, "  %-10s %s\n", name, c.Summary)
			if c.Flags != nil {
				writeFlags(w, c.Flags)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Environment (name, default):")
	for _, v := range config.Variables(cfg) {
		d := v.Default
		if d == "" {
			d = "-"
		}
		fmt.Fprintf(w, "  %-28s %s\n", v.Name, d)
	}
	fmt.Fprintln(w, "  (docs/configuration.md says what each one does)")
	fmt.Fprintln(w)
	fmt.Fprint(w, exitCodes)
	if examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s", examples)
	}
}

func writeFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		arg := "--" + f.Name
		if name != "" {
			arg += " " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "      %-22s %s%s\n", arg, strings.ReplaceAll(usage, "\n", " "), def)
	})
}
