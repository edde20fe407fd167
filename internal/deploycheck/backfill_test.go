package deploycheck

import (
	"context"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/tfeval"
)

// backfillSubscription is the pull subscription: the one without
// push_config that is not on the dead-letter topic.
func backfillSubscription(t *testing.T, in *tfeval.Instance) tfeval.Resource {
	t.Helper()
	push := pushSubscription(t, in)
	dl, _, _ := check(push.One("dead_letter_policy")).of(t).Str("dead_letter_topic")
	var pull []tfeval.Resource
	for _, s := range check(in.AllResources("google_pubsub_subscription")).of(t) {
		topic, _, _ := s.Str("topic")
		if len(check(s.Blocks("push_config")).of(t)) == 0 && topic != dl {
			pull = append(pull, s)
		}
	}
	if len(pull) != 1 {
		t.Fatalf("%s: want one pull subscription besides the dead-letter one, found %d", in.Path, len(pull))
	}
	return pull[0]
}

// Back-fills (issue 10): a worker pool of `loader --pull` with a fixed
// instance count per environment, on a pull subscription with
// exactly-once delivery, dead-lettering that counts only real failures
// (the client extends leases while a date is worked, so waiting costs no
// attempt), flow control of var.backfill_max_outstanding dates per
// instance, and the loader's own configuration accepting what it is given.
func TestBackfillWorkerPool(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		for _, n := range []int64{0, 7} {
			in := env(t, e, map[string]cty.Value{"backfill_loaders": num(n), "backfill_max_outstanding": num(2)})
			pool := single(t, in, "google_cloud_run_v2_worker_pool")
			where := e + " " + pool.ID()
			scaling := check(pool.One("scaling")).of(t)
			if mode, _, _ := scaling.Str("scaling_mode"); mode != "MANUAL" {
				t.Errorf("%s: scaling_mode %q, want MANUAL (a fixed instance count)", where, mode)
			}
			if c, _, err := scaling.Num("manual_instance_count"); err != nil || c == nil || c.String() != num(n).AsBigFloat().String() {
				t.Errorf("%s: manual_instance_count %v, want var.backfill_loaders = %d (%v)", where, c, n, err)
			}
			tmpl := check(pool.One("template")).of(t)
			container := check(tmpl.One("containers")).of(t)
			args, _, err := container.Attr("args")
			if err != nil || !args.Equals(cty.TupleVal([]cty.Value{str("--pull")})).True() && !args.Equals(cty.ListVal([]cty.Value{str("--pull")})).True() {
				t.Errorf("%s: args %#v, want [--pull]", where, args)
			}
			svc := cloudRun(t, in)[0]
			// One identity per workload (issue 28): the pool is not the push service.
			if a, _, _ := tmpl.Str("service_account"); !strings.Contains(a, "/google_service_account.backfill.") {
				t.Errorf("%s: service_account %q, want the back-fill identity of its own", where, a)
			}
			got := envOf(t, container)
			sub := backfillSubscription(t, in)
			subName, _, _ := sub.Str("name")
			if got["PUBSUB_SUBSCRIPTION"] != subName {
				t.Errorf("%s: PUBSUB_SUBSCRIPTION %q, want the pull subscription %q", where, got["PUBSUB_SUBSCRIPTION"], subName)
			}
			subTopic, _, _ := sub.Str("topic")
			for _, topic := range check(in.AllResources("google_pubsub_topic")).of(t) {
				name, _, _ := topic.Str("name")
				if "<"+topic.ID()+".id>" == subTopic && got["PUBSUB_TOPIC"] != name {
					t.Errorf("%s: PUBSUB_TOPIC %q: a continuation would leave the pull path (want %q)", where, got["PUBSUB_TOPIC"], name)
				}
			}
			// The rest is the loader service's environment.
			for k, v := range envOf(t, svc.container) {
				switch k {
				case "PUBSUB_TOPIC", "LOADER_BUDGET":
				default:
					if got[k] != v {
						t.Errorf("%s: %s = %q, the loader service has %q", where, k, got[k], v)
					}
				}
			}
			// The loader's configuration, as a puller.
			lookup := map[string]string{"PG_PASSWORD": "x"}
			for k, v := range got {
				lookup[k] = v
			}
			lookup = withMountedCA(t, where, tmpl, container, lookup)
			known := map[string]bool{}
			for _, v := range binaryVars(t, "loader") {
				known[v.Name] = true
			}
			for k := range got {
				if !known[k] {
					t.Errorf("%s: %s is set but the loader does not read it", where, k)
				}
			}
			var c config.Loader
			if err := config.Load(context.Background(), &c, envconfig.MapLookuper(lookup)); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(config.Pull); err != nil {
				t.Errorf("%s: the pool's environment does not validate for --pull: %v", where, err)
			}
			// Flow control: messages held per instance.
			if c.Concurrency != 2 {
				t.Errorf("%s: the loader would hold %d messages at once, want var.backfill_max_outstanding = 2", where, c.Concurrency)
			}
		}

		in := env(t, e, nil)
		if in.Vars["backfill_loaders"].AsBigFloat().Sign() != 0 {
			t.Errorf("%s: back-fill loaders run by default: they are billed while they run", e)
		}
		// The default flow control is two dates per instance (make scale).
		pool := single(t, in, "google_cloud_run_v2_worker_pool")
		c := envOf(t, check(check(pool.One("template")).of(t).One("containers")).of(t))
		if c["LOADER_CONCURRENCY"] != "2" {
			t.Errorf("%s: default flow control %q dates per instance, want 2", e, c["LOADER_CONCURRENCY"])
		}

		sub := backfillSubscription(t, in)
		where := e + " " + sub.ID()
		if v, _, err := sub.Attr("enable_exactly_once_delivery"); err != nil || !v.True() {
			t.Errorf("%s: exactly-once delivery is not enabled (%v)", where, err)
		}
		ack, _, err := sub.Num("ack_deadline_seconds")
		if err != nil || ack == nil {
			t.Fatalf("%s: no ack_deadline_seconds (%v)", where, err)
		}
		if a, _ := ack.Int64(); a < 10 || a > 600 {
			t.Errorf("%s: ack deadline %d s outside Pub/Sub's 10..600", where, a)
		}
		rp := check(sub.One("retry_policy")).of(t)
		minB, _, _ := rp.Str("minimum_backoff")
		maxB, _, _ := rp.Str("maximum_backoff")
		if minB == "" || maxB == "" || parseSeconds(t, where, minB) >= parseSeconds(t, where, maxB) {
			t.Errorf("%s: retry_policy %q..%q is not an exponential backoff", where, minB, maxB)
		}
		dlp := check(sub.One("dead_letter_policy")).of(t)
		push := pushSubscription(t, in)
		pushDL, _, _ := check(push.One("dead_letter_policy")).of(t).Str("dead_letter_topic")
		if dl, _, _ := dlp.Str("dead_letter_topic"); dl != pushDL {
			t.Errorf("%s: dead-letters to %q, not the dead-letter topic %q the alerts watch", where, dl, pushDL)
		}
		if n, _, err := dlp.Num("max_delivery_attempts"); err != nil || n == nil {
			t.Errorf("%s: no max_delivery_attempts", where)
		} else if a, _ := n.Int64(); a < 5 || a > 100 {
			t.Errorf("%s: max_delivery_attempts %d outside 5..100", where, a)
		}
		// Pub/Sub's agent must be able to forward dead letters from it, the
		// back-fill pool to pull from it, and the push service must not.
		var agent, pulls, pushPulls bool
		for _, g := range iamGrants(t, in) {
			agent = agent || (g.principal == pubsubAgent && g.role == "roles/pubsub.subscriber" && g.target == sub.ID())
			pulls = pulls || (g.principal == "backfill" && g.role == "roles/pubsub.subscriber" && g.target == sub.ID())
			pushPulls = pushPulls || (g.principal == "loader" && g.target == sub.ID())
		}
		if !agent || !pulls || pushPulls {
			t.Errorf("%s: subscriber grants: Pub/Sub's agent %v, the back-fill pool %v, the push service %v (want true, true, false)", where, agent, pulls, pushPulls)
		}
		if strings.Contains(subTopicName(t, in, sub), "dead-letter") {
			t.Errorf("%s: the pull subscription is on the dead-letter topic", where)
		}
	}
}

// subTopicName is the name of the topic a subscription reads.
func subTopicName(t *testing.T, in *tfeval.Instance, sub tfeval.Resource) string {
	t.Helper()
	topic, _, _ := sub.Str("topic")
	for _, r := range check(in.AllResources("google_pubsub_topic")).of(t) {
		if "<"+r.ID()+".id>" == topic {
			name, _, _ := r.Str("name")
			return name
		}
	}
	t.Fatalf("%s: topic %q is not one of the stack's", sub.ID(), topic)
	return ""
}
