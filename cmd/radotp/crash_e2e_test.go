package main

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// kill -9 under load (issue 6): radotp commits a used time step before the
// Accept leaves, so no code that was ever accepted is accepted again after a
// crash, whenever the crash comes.

// usedCode is a code sent for one user's time step.
type usedCode struct {
	user otpUser
	step int64
	code string
}

// TestKill9UnderLoad runs load from several NAS sockets (fresh codes in
// ascending step order per user, replays of accepted codes, wrong codes),
// kills the server with SIGKILL at a random moment while fresh codes are
// being committed (right after a random one of the round's accepts, plus
// 0-3 ms), restarts it on the same port and sends every code that got an
// Access-Accept before the kill again, each in a new packet: every one must
// be rejected. It does this twice (two kills), each round with its own
// users; after the second restart the codes of both rounds are replayed.
//
// Codes that were sent but never answered before the kill may be accepted
// after the restart (the server may have died before committing them): they
// are sent too, and their outcome is only reported.
func TestKill9UnderLoad(t *testing.T) {
	const (
		rounds     = 2
		workers    = 6
		perWorker  = 8                      // users per worker and round
		minAccepts = 10                     // accepts before a kill, at least
		reqTimeout = 800 * time.Millisecond // NAS timeout during the load
		maxRound   = 6 * time.Second        // load before a kill, at most
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	cfg := writeOTPConfig(t, dir, addr, "")
	setup := time.Now()
	users := addOTPUsers(t, cfg, "load", rounds*workers*perWorker)
	s := startServer(t, cfg)
	if s.radius != addr {
		t.Fatalf("radotp listens on %s, not on the configured %s", s.radius, addr)
	}
	t.Logf("%d users created and server started in %v", len(users), time.Since(setup).Round(time.Millisecond))

	var accepted []usedCode // every code that got an Access-Accept before a kill
	for round := range rounds {
		var (
			mu                   sync.Mutex
			roundAccepted        []usedCode
			unanswered           []usedCode // fresh codes without a reply
			violations           []string
			sent, accepts        atomic.Int64
			replays, wrongs      atomic.Int64
			freshRejected, noRep atomic.Int64
		)
		violate := func(format string, args ...any) {
			mu.Lock()
			violations = append(violations, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		// The kill comes right after a random one of the round's accepts
		// (the load offers about 3 fresh codes per user), while the other
		// workers keep sending fresh codes, replays and wrong codes.
		killAfter := minAccepts + rng.Int64N(workers*perWorker*3*8/10-minAccepts)
		killNow := make(chan struct{})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			mine := users[(round*workers+w)*perWorker : (round*workers+w+1)*perWorker]
			n := mustNAS(t, "127.0.0.1:0", addr)
			wrng := rand.New(rand.NewPCG(seed, uint64(1+round*workers+w)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				last := make([]int64, len(mine)) // highest step sent per user: steps go up
				var acc []usedCode               // this worker's accepted codes
				for {
					select {
					case <-stop:
						return
					default:
					}
					// A quarter fresh codes (the next unsent step in
					// cur-1..cur+1 of a user), the rest replays of accepted
					// codes and wrong codes.
					cur := currentStep()
					var fresh []int
					for i := range mine {
						if max(last[i]+1, cur-1) <= cur+1 {
							fresh = append(fresh, i)
						}
					}
					x := wrng.IntN(8)
					switch {
					case x < 2 && len(fresh) > 0:
						i := fresh[wrng.IntN(len(fresh))]
						step := max(last[i]+1, cur-1)
						last[i] = step
						c := usedCode{mine[i], step, mine[i].code(step)}
						sent.Add(1)
						r, _, err := n.exchange(n.accessRequest(c.user.name, c.code), reqTimeout, 1)
						switch {
						case err != nil:
							noRep.Add(1)
							mu.Lock()
							unanswered = append(unanswered, c)
							mu.Unlock()
						case isAccept(r):
							if accepts.Add(1) == killAfter {
								close(killNow)
							}
							acc = append(acc, c)
							mu.Lock()
							roundAccepted = append(roundAccepted, c)
							mu.Unlock()
						default:
							freshRejected.Add(1) // e.g. the step ended on the way
						}
					case x < 5 && len(acc) > 0:
						c := acc[wrng.IntN(len(acc))]
						sent.Add(1)
						replays.Add(1)
						if r, _, err := n.exchange(n.accessRequest(c.user.name, c.code), reqTimeout, 1); err == nil && !isReject(r) {
							violate("replay of %s's accepted code (step %d) during the load: %s", c.user.name, c.step, replyName(r))
						}
					default:
						u := mine[wrng.IntN(len(mine))]
						sent.Add(1)
						wrongs.Add(1)
						if r, _, err := n.exchange(n.accessRequest(u.name, notCode(u.code(cur))), reqTimeout, 1); err == nil && !isReject(r) {
							violate("wrong code for %s: %s", u.name, replyName(r))
						}
					}
				}
			}()
		}

		start := time.Now()
		select {
		case <-killNow:
			time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Millisecond))))
		case <-time.After(maxRound):
			close(stop)
			wg.Wait()
			t.Fatalf("round %d: only %d accepts in %v (%d requests)\n%s", round, accepts.Load(), maxRound, sent.Load(), s.logs())
		}
		killServer(t, s)
		killedAfter := time.Since(start)
		close(stop)
		wg.Wait()
		if len(violations) > 0 {
			t.Fatalf("round %d, before the kill:\n%s", round, strings.Join(violations, "\n"))
		}
		mu.Lock()
		accepted = append(accepted, roundAccepted...)
		lost := slices.Clone(unanswered)
		mu.Unlock()
		t.Logf("round %d: killed %v into the load, after accept #%d; %d requests: %d fresh codes accepted, %d fresh rejected, %d unanswered; %d replays and %d wrong codes rejected",
			round, killedAfter.Round(time.Millisecond), killAfter, sent.Load(), accepts.Load(), freshRejected.Load(), noRep.Load(), replays.Load(), wrongs.Load())

		// Restart on the same config and port; every code accepted so far
		// (this round and the ones before) is replayed in a new packet.
		s = startServer(t, cfg)
		if s.radius != addr {
			t.Fatalf("restarted radotp listens on %s, not on %s", s.radius, addr)
		}
		n := mustNAS(t, "127.0.0.1:0", addr)
		var bad []string
		for _, c := range accepted {
			r, _, err := n.exchange(n.accessRequest(c.user.name, c.code), 2*time.Second, 3)
			if err != nil || !isReject(r) {
				bad = append(bad, fmt.Sprintf("%s step %d: %s (%v)", c.user.name, c.step, replyName(r), err))
			}
		}
		if len(bad) > 0 {
			t.Fatalf("round %d: %d of %d codes accepted before the kill were not rejected after the restart:\n%s",
				round, len(bad), len(accepted), strings.Join(bad, "\n"))
		}
		// Codes that got no reply before the kill: either outcome is
		// right; in step order per user, as a user would type them.
		slices.SortFunc(lost, func(a, b usedCode) int {
			return cmp.Or(strings.Compare(a.user.name, b.user.name), cmp.Compare(a.step, b.step))
		})
		var lostAccepted, lostRejected int
		var nowAccepted []usedCode // replayed after the next kill
		for _, c := range lost {
			r, _, err := n.exchange(n.accessRequest(c.user.name, c.code), 2*time.Second, 3)
			switch {
			case err != nil:
				t.Fatalf("round %d: no reply after the restart for %s step %d: %v", round, c.user.name, c.step, err)
			case isAccept(r):
				lostAccepted++
				nowAccepted = append(nowAccepted, c)
			default:
				lostRejected++
			}
		}
		m, err := scrape(s.stats)
		if err != nil {
			t.Fatal(err)
		}
		replayed, skewed := m[reason("replayed_code")], m[reason("clock_skew")]
		t.Logf("round %d, after the restart: %d accepted codes replayed, all rejected (server: replayed_code %v, clock_skew %v); unanswered codes: %d accepted now (never committed), %d rejected (committed before the kill, or expired)",
			round, len(accepted), replayed, skewed, lostAccepted, lostRejected)
		// The server saw it the same way: every reject a code reject, and
		// no Accept but those of never-answered codes.
		if int(replayed+skewed) != len(accepted)+lostRejected || int(m[`radotp_radius_requests_total{code="access_accept"}`]) != lostAccepted {
			t.Fatalf("round %d: server metrics disagree with the replies: replayed_code %v + clock_skew %v, want %d; access_accept %v, want %d\n%s",
				round, replayed, skewed, len(accepted)+lostRejected, m[`radotp_radius_requests_total{code="access_accept"}`], lostAccepted, s.logs())
		}
		if replayed == 0 {
			t.Fatalf("round %d: no replay was rejected as replayed_code", round)
		}
		accepted = append(accepted, nowAccepted...)
	}
	s.stop(t)
	if strings.Contains(s.logs(), "panic") {
		t.Fatalf("radotp logged a panic:\n%s", s.logs())
	}
}

// TestKill9RetransmitAfterRestart: an Access-Accept leaves, radotp is killed
// right after it arrived, and the NAS, which did not get the reply (it was
// lost), retransmits the identical request from the same socket once the
// server is back. RFC 5080's reply cache would have answered the retransmit
// with the same Accept; across a restart that needs the cache (or the
// decision) persisted. The retransmit must get the Accept again, byte for
// byte, within the reply-cache TTL; a Reject here (replayed_code) means the
// reply cache does not survive a restart.
//
// That must open no replay: the same bytes from another source port, the
// same code in a new packet, and the retransmit once the TTL is over are
// all rejected.
func TestKill9RetransmitAfterRestart(t *testing.T) {
	const ttl = 5 * time.Second // radius.reply_cache_ttl: the least allowed, so that its end comes soon
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	cfg := writeOTPConfig(t, dir, addr, fmt.Sprintf("reply_cache_ttl = %q", ttl))
	u := addOTPUsers(t, cfg, "nas", 1)[0]
	s := startServer(t, cfg)

	n := mustNAS(t, "127.0.0.1:0", addr)
	code := u.code(currentStep())
	req := n.accessRequest(u.name, code)
	first := time.Now()
	reply, _, err := n.exchange(req, 2*time.Second, 1)
	if err != nil || !isAccept(reply) {
		t.Fatalf("first request: %s (%v)\n%s", replyName(reply), err, s.logs())
	}
	killServer(t, s)
	s = startServer(t, cfg)

	// The NAS retransmits (it never saw the reply): same bytes, same socket,
	// every half second, while the reply cache would still hold the answer.
	var got []byte
	for time.Since(first) < ttl-time.Second {
		if got, _, err = n.exchange(req, 500*time.Millisecond, 1); err == nil {
			break
		}
	}
	again := time.Now()
	m, merr := scrape(s.stats)
	if merr != nil {
		t.Fatal(merr)
	}
	t.Logf("retransmit %v after the first send, after a restart: %s (server: access_accept %v, access_reject %v, replayed_code %v, retransmits_answered %v)",
		again.Sub(first).Round(time.Millisecond), replyName(got), m[`radotp_radius_requests_total{code="access_accept"}`],
		m[`radotp_radius_requests_total{code="access_reject"}`], m[reason("replayed_code")], m["radotp_radius_retransmits_answered_total"])
	switch {
	case err != nil:
		t.Fatalf("no reply to the retransmit after the restart (%v): the NAS sees a timeout, not the Accept it was owed", err)
	case isReject(got) && m[reason("replayed_code")] == 1:
		t.Fatalf("retransmit after the restart got Access-Reject (replayed_code): the reply cache (RFC 5080) does not survive a kill -9, so the identical retransmit of an accepted request was verified again and its code is used")
	case !isAccept(got):
		t.Fatalf("retransmit after the restart got %s, want Access-Accept", replyName(got))
	case !bytes.Equal(got, reply):
		t.Errorf("retransmit after the restart got an Access-Accept that differs from the first reply:\n first % x\n again % x", reply, got)
	}

	// No replay through that door.
	other := mustNAS(t, "127.0.0.1:0", addr)
	if r, _, err := other.exchange(req, 2*time.Second, 2); err != nil || !isReject(r) {
		t.Errorf("the same bytes from another source port: %s (%v), want Access-Reject", replyName(r), err)
	}
	if r, _, err := n.exchange(n.accessRequest(u.name, code), 2*time.Second, 2); err != nil || !isReject(r) {
		t.Errorf("the same code in a new packet from the same socket: %s (%v), want Access-Reject", replyName(r), err)
	}
	// Once the TTL is over, counted from the retransmit (the restarted
	// server's own cache holds it until then), the retransmit is a replay.
	time.Sleep(time.Until(again.Add(ttl + 500*time.Millisecond)))
	if r, _, err := n.exchange(req, 2*time.Second, 2); err != nil || !isReject(r) {
		t.Errorf("the retransmit %v after the first send, after the TTL: %s (%v), want Access-Reject",
			time.Since(first).Round(time.Millisecond), replyName(r), err)
	}
	if m, err := scrape(s.stats); err != nil || m[reason("replayed_code")] != 3 {
		t.Errorf("replayed_code = %v (%v), want 3 (other port, new packet, after the TTL)", m[reason("replayed_code")], err)
	}
}
