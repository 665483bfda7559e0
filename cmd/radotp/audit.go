package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/radotp/radotp/radius"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// decider is what the RADIUS server asks (verifier.Verifier and its wrappers).
type decider interface {
	Verify(ctx context.Context, a verifier.Attempt) (verifier.Decision, error)
}

// auditing stores every decision (and every drop the verifier caused) in the
// audit log. The store batches the writes on its own goroutine; this only
// queues an entry.
type auditing struct {
	next decider
	db   *store.DB
}

func (a auditing) Verify(ctx context.Context, at verifier.Attempt) (verifier.Decision, error) {
	start := time.Now()
	d, err := a.next.Verify(ctx, at)
	e := store.AuditEntry{
		Time: start, User: at.User, Client: at.Client.Name, CallingStation: at.CallingStation,
		Source: at.Source.String(), Duration: time.Since(start),
		Result: d.Outcome.String(), Reason: string(d.Reason),
	}
	if err != nil {
		e.Result, e.Reason = "dropped", radius.DropStorageError
		if errors.Is(err, verifier.ErrFirstFactorUnavailable) {
			e.Reason = radius.DropFirstFactorUnavailable
		}
	}
	a.db.Audit(e)
	return d, err
}

// pruneAudit deletes audit entries older than retention, now and every hour,
// until ctx ends.
func pruneAudit(ctx context.Context, m *Main, retention time.Duration) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := m.DB.PruneAudit(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			m.Logger.Error("audit: pruning old entries failed", "err", err)
		case n > 0:
			m.Logger.Info("audit: pruned old entries", "deleted", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// auditView is the --json shape of an audit entry.
type auditView struct {
	Time           time.Time `json:"time"`
	User           string    `json:"user"`
	Client         string    `json:"client"`
	CallingStation string    `json:"calling_station"`
	Source         string    `json:"source"`
	Result         string    `json:"result"`
	Reason         string    `json:"reason"`
	DurationMS     float64   `json:"duration_ms"`
}

func (c *cli) audit(args []string) error {
	fs := c.flags("audit")
	user := fs.String("user", "", "only this user")
	since := fs.Duration("since", 24*time.Hour, "how far back")
	limit := fs.Int("limit", 1000, "at most this many, the newest")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	if *since <= 0 || *limit <= 0 {
		return usageError{"--since and --limit must be positive"}
	}
	_, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	es, err := db.QueryAudit(context.Background(), store.AuditQuery{User: *user, Since: c.now().Add(-*since), Limit: *limit})
	if err != nil {
		return err
	}
	views := make([]auditView, 0, len(es))
	for _, e := range es {
		views = append(views, auditView{Time: e.Time.UTC(), User: e.User, Client: e.Client, CallingStation: e.CallingStation,
			Source: e.Source, Result: e.Result, Reason: e.Reason, DurationMS: float64(e.Duration.Microseconds()) / 1000})
	}
	if *asJSON {
		return writeJSON(c.stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintf(c.stderr, "no decisions in the last %s\n", *since)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tUSER\tCLIENT\tCALLING-STATION\tRESULT\tREASON\tMS")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n", v.Time.Local().Format("2006-01-02 15:04:05"),
			printable(v.User), v.Client, dash(printable(v.CallingStation)), v.Result, dash(v.Reason), v.DurationMS)
	}
	return tw.Flush()
}

// printable shows NAS-supplied text safely on a terminal.
func printable(s string) string {
	q := fmt.Sprintf("%q", s)
	if q[1:len(q)-1] == s && !strings.ContainsAny(s, " \t") {
		return s
	}
	return q
}

func (c *cli) userSet(args []string) error {
	fs := c.flags("user set")
	policy := fs.String("policy", "", "default|required|optional|disabled")
	email := fs.String("email", "", "e-mail address")
	pos, err := parse(fs, args, 1, "a user NAME")
	if err != nil {
		return err
	}
	if *policy == "" && *email == "" {
		return usageError{"user set needs --policy or --email"}
	}
	_, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if *policy != "" {
		pol, err := checkPolicy(*policy)
		if err != nil {
			return err
		}
		if err := db.SetPolicy(ctx, pos[0], pol); err != nil {
			return notFound(err, pos[0])
		}
		fmt.Fprintf(c.stdout, "policy of %s set to %s\n", pos[0], *policy)
	}
	if *email != "" {
		if err := checkEmail(*email); err != nil {
			return err
		}
		if err := db.SetEmail(ctx, pos[0], *email); err != nil {
			return notFound(err, pos[0])
		}
		fmt.Fprintf(c.stdout, "e-mail of %s set to %s\n", pos[0], *email)
	}
	return nil
}
