package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/pgsource"
)

// Pins are what a deployment fixes about where the PostgreSQL password and
// the synced rows may go, given as leading --pin=NAME=VALUE arguments.
//
// Why arguments and not variables: whoever may run the planner job with
// overrides (the operator commands need argument overrides) may also
// override any environment variable of that execution, a pin given as one
// too. Cloud Run's execution overrides replace a container's arguments and
// add or replace variables, but cannot change its command
// (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs/run,
// ContainerOverride: name, args, env, clearArgs), and Terraform writes the
// pins into the command. An override's own arguments come after the
// command's, so a pin given again is refused rather than taken.
type Pins map[string]string

// PinFlag is the argument a pin is given with.
const PinFlag = "--pin="

// pinnable are the names a pin may fix: PG_HOST and PG_PORT are compared
// with every host and port PG_DSN connects to; the others with the
// variable of that name.
var pinnable = map[string]bool{
	"PG_HOST": true, "PG_PORT": true, "PG_ALLOW_UNVERIFIED_TLS": true,
	"BQ_PROJECT": true, "BQ_ENDPOINT": true, "BQ_DATASET": true, "BQ_STAGING_DATASET": true, "BQ_STATE_DATASET": true,
	"PUBSUB_PROJECT": true,
}

// Redirecting are the variables, read by the Go runtime and the client
// libraries rather than by pgbq's configuration, that change where a
// connection goes or whom it trusts (a proxy, a CA file such as
// /proc/self/environ holding a certificate put in another variable, an
// emulator host, the metadata server, other credentials). Under pins they
// must be unset: an override could otherwise send the rows or the
// access token past every pin. libpq's PG* variables need no entry: PG_DSN
// is checked as pgx parses it, with them applied.
var Redirecting = []string{
	"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "GODEBUG",
	"GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_UNIVERSE_DOMAIN", "GOOGLE_API_USE_CLIENT_CERTIFICATE",
	"GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT",
	"BIGQUERY_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
}

// TakePins removes the leading --pin=NAME=VALUE arguments from args. A
// name pinned twice, or one that cannot be pinned, is an error.
func TakePins(args []string) (Pins, []string, error) {
	pins := Pins{}
	for len(args) > 0 && strings.HasPrefix(args[0], PinFlag) {
		name, value, ok := strings.Cut(strings.TrimPrefix(args[0], PinFlag), "=")
		switch {
		case !ok || !pinnable[name]:
			return nil, nil, fmt.Errorf("%s: want %sNAME=VALUE, NAME one of %s", args[0], PinFlag, strings.Join(pinNames(), ", "))
		case hasKey(pins, name):
			return nil, nil, fmt.Errorf("%s%s is given twice: a pin set by the deployment cannot be given again", PinFlag, name)
		}
		pins[name] = value
		args = args[1:]
	}
	return pins, args, nil
}

func hasKey(p Pins, k string) bool { _, ok := p[k]; return ok }

func pinNames() []string {
	var names []string
	for n := range pinnable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Check refuses a configuration (read with lookuper; the process
// environment when nil) that differs from a pin, or that sets a
// Redirecting variable while anything is pinned. Nothing pinned (a laptop,
// the tests) checks nothing.
func (p Pins) Check(lookuper envconfig.Lookuper) error {
	if len(p) == 0 {
		return nil
	}
	if lookuper == nil {
		lookuper = envconfig.OsLookuper()
	}
	get := func(name string) string {
		v, _ := lookuper.Lookup(name)
		return v
	}
	var errs []error
	for _, name := range pinNames() {
		want, ok := p[name]
		if !ok {
			continue
		}
		switch name {
		case "PG_HOST", "PG_PORT":
			// As the binary will parse it: every host the password may go to.
			cc, err := pgx.ParseConfig(get("PG_DSN"))
			if err != nil {
				errs = append(errs, errors.New("PG_DSN is not a valid PostgreSQL connection string"))
				continue
			}
			for _, h := range pgsource.Hosts(cc) {
				got := h.Name
				if name == "PG_PORT" {
					got = strconv.Itoa(int(h.Port))
				}
				if got != want {
					errs = append(errs, fmt.Errorf("PG_DSN connects to %s %q, but the deployment pins %s=%q: the password goes only there", strings.ToLower(strings.TrimPrefix(name, "PG_")), got, name, want))
					break
				}
			}
		case "PG_ALLOW_UNVERIFIED_TLS":
			got, _ := strconv.ParseBool(get(name))
			if w, _ := strconv.ParseBool(want); got != w {
				errs = append(errs, fmt.Errorf("%s is %q, but the deployment pins %s=%q", name, get(name), name, want))
			}
		default:
			if got := get(name); got != want {
				errs = append(errs, fmt.Errorf("%s is %q, but the deployment pins %s=%q: the rows go only there", name, got, name, want))
			}
		}
	}
	for _, name := range Redirecting {
		if get(name) != "" {
			errs = append(errs, fmt.Errorf("%s is set, which the deployment's pins forbid: it changes where connections go or whom they trust", name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("configuration differs from what this deployment pins (an execution override?):\n%w", errors.Join(errs...))
	}
	return nil
}
