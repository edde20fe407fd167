package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/cli"
	"github.com/pgbq/pgbq/internal/planner"
)

// cmdLine is the parsed command line.
type cmdLine struct {
	cmd             string
	dryRun, version bool
	// status, resync, pause, resume, verify
	table, from, to, state, format, reason string
	verify, repair                         bool
	fromDate, toDate                       civil.Date
	// flagSets for the help text, by command
	global *flag.FlagSet
	sets   map[string]*flag.FlagSet
}

// commands in the order the help lists them.
var commands = []struct{ name, summary string }{
	{"", "re-check recent dates, plan the unfinished ones and publish one message per date (the scheduled job)"},
	{"status", "per date: state, rows staged, last writer and time, from sync_control only; then a summary per table"},
	{"resync", "re-open finished, failed, mismatched or quarantined dates on purpose and publish them again (to PUBSUB_TOPIC)"},
	{"pause", "stop planning a table; loaders ack its messages without work"},
	{"resume", "plan a paused table again (from the next run)"},
	{"verify", "compare each date in PostgreSQL and BigQuery; --repair rebuilds the ones that differ"},
	{"check", "how each column would travel to BigQuery; exit 3 if one cannot (needs only PG_* and SYNC_*)"},
	{"migrate", "create the datasets, sync_control and the destination tables (once per deploy)"},
}

func parseArgs(args []string) (*cmdLine, error) {
	c := &cmdLine{sets: map[string]*flag.FlagSet{}}
	c.global = flag.NewFlagSet("planner", flag.ContinueOnError)
	c.global.BoolVar(&c.dryRun, "dry-run", false, "print the plan instead of publishing it")
	c.global.BoolVar(&c.version, "version", false, "print the version and exit")
	for _, cmd := range commands[1:] {
		c.sets[cmd.name] = flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	}
	st := c.sets["status"]
	st.StringVar(&c.table, "table", "", "only this table (its destination name)")
	st.StringVar(&c.from, "from", "", "first date (`YYYY-MM-DD`; default: the start date, else the first date in sync_control)")
	st.StringVar(&c.to, "to", "", "last date (`YYYY-MM-DD`; default: today)")
	st.StringVar(&c.state, "state", "", "only dates in this state: "+strings.Join(planner.StatusStates, "|")+" (the summary counts all)")
	st.StringVar(&c.format, "format", "table", "table, or json: one JSON object per line (kind date, then kind summary)")
	st.BoolVar(&c.verify, "verify", false, "also recount every date in PostgreSQL and BigQuery (slow: reads both)")
	rs := c.sets["resync"]
	rs.StringVar(&c.table, "table", "", "the table (its destination name; required)")
	rs.StringVar(&c.from, "from", "", "first date to re-open (`YYYY-MM-DD`; required)")
	rs.StringVar(&c.to, "to", "", "last date to re-open (`YYYY-MM-DD`; default: --from)")
	rs.StringVar(&c.reason, "reason", "", "why, recorded in sync_control's detail")
	for _, name := range []string{"pause", "resume"} {
		c.sets[name].StringVar(&c.table, "table", "", "the table (its destination name; required)")
		c.sets[name].StringVar(&c.reason, "reason", "", "why, recorded in sync_control's detail")
	}
	vf := c.sets["verify"]
	vf.StringVar(&c.from, "from", "", "first date to verify (`YYYY-MM-DD`; default: the start date)")
	vf.StringVar(&c.to, "to", "", "last date to verify (`YYYY-MM-DD`; default: yesterday)")
	vf.BoolVar(&c.repair, "repair", false, "rebuild each date that differs from scratch and verify it again")

	if err := cli.Parse(c.global, args, 1<<30); err != nil {
		return c, err
	}
	if c.version {
		return c, nil
	}
	c.cmd = c.global.Arg(0)
	if c.cmd == "help" {
		return c, flag.ErrHelp
	}
	fs, ok := c.sets[c.cmd]
	if c.cmd != "" && !ok {
		return c, cli.Usagef("unknown command %q (commands: status, resync, pause, resume, verify, check, migrate; no command plans and publishes)", c.cmd)
	}
	if c.cmd != "" {
		if err := cli.Parse(fs, c.global.Args()[1:], 0); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return c, err
			}
			return c, fmt.Errorf("%s: %w", c.cmd, err)
		}
	}
	return c, c.check()
}

// check validates the flag values and fills the dates.
func (c *cmdLine) check() error {
	switch c.cmd {
	case "status":
		if c.state != "" && !slices.Contains(planner.StatusStates, c.state) {
			return cli.Usagef("status: --state %q must be one of %s", c.state, strings.Join(planner.StatusStates, ", "))
		}
		if c.format != "table" && c.format != "json" {
			return cli.Usagef("status: --format %q must be table or json", c.format)
		}
	case "resync":
		if c.table == "" || c.from == "" {
			return cli.Usagef("resync: --table and --from are required")
		}
		if c.to == "" {
			c.to = c.from
		}
	case "pause", "resume":
		if c.table == "" {
			return cli.Usagef("%s: --table is required", c.cmd)
		}
	}
	for _, a := range []struct {
		arg  string
		dst  *civil.Date
		name string
	}{{c.from, &c.fromDate, "--from"}, {c.to, &c.toDate, "--to"}} {
		if a.arg == "" {
			continue
		}
		d, err := civil.ParseDate(a.arg)
		if err != nil {
			return cli.Usagef("%s: %s %q is not a date (YYYY-MM-DD)", c.cmd, a.name, a.arg)
		}
		*a.dst = d
	}
	// verify bounds each table's own range by the dates: an empty
	// intersection is "no dates to verify", not a usage error.
	if c.cmd != "verify" && !c.fromDate.IsZero() && !c.toDate.IsZero() && c.toDate.Before(c.fromDate) {
		return cli.Usagef("%s: --to %s is before --from %s", c.cmd, c.to, c.from)
	}
	return nil
}

const examples = `  planner                                   plan and publish (what the scheduler runs)
  planner --dry-run                         print the plan, publish nothing
  planner status --state unfinished         the dates still to do, and the back-fill's ETA
  planner status --table orders --format json --from 2024-01-01
  planner resync --table orders --from 2024-03-01 --to 2024-03-03 --reason "rows fixed at the source"
  planner pause --table orders --reason "source maintenance"; planner resume --table orders
  planner verify --from 2024-03-01 --repair
  On Cloud Run: gcloud run jobs execute PREFIX-planner --region R --wait --args=status,--state,failed
`

// help prints the planner's help (one command's when it was asked for).
func help(w io.Writer, c *cmdLine) {
	if c != nil && c.cmd != "" && c.sets[c.cmd] != nil {
		for _, cmd := range commands {
			if cmd.name == c.cmd {
				fmt.Fprintf(w, "planner %s [flags]: %s\n\nFlags:\n", cmd.name, cmd.summary)
				c.sets[cmd.name].SetOutput(w)
				c.sets[cmd.name].PrintDefaults()
				fmt.Fprintf(w, "\n%s", cli.ExitCodes)
				return
			}
		}
	}
	var cmds []cli.Command
	for _, cmd := range commands {
		cmds = append(cmds, cli.Command{Name: cmd.name, Summary: cmd.summary, Flags: c.sets[cmd.name]})
	}
	cli.Help(w, "planner", "plans the dates of the configured tables and is the operator's tool", c.global, cmds, &Config{}, cli.ExitCodes, examples)
}
