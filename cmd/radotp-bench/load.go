package main

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadOpts configures one load run.
type loadOpts struct {
	addr     netip.AddrPort
	secret   []byte
	users    *userSet
	codeOnly bool  // User-Password is the code only (radotp mode "otp"); else password+code
	period   int64 // TOTP step, seconds

	nas     int        // simulated NASes
	nasBase netip.Addr // first NAS source address; the others follow it
	sockets int        // UDP sockets (source ports) per NAS

	rate     float64       // open loop: new requests per second; 0 = closed loop
	conc     int           // closed loop: requests outstanding at once
	duration time.Duration // how long to send new requests (0: until requests)
	requests int           // stop after this many new requests (0: until duration)

	timeout, timeoutMax time.Duration // wait for a reply before a retransmit (random in [timeout, timeoutMax])
	retries             int           // retransmits before giving up
	loss                float64       // simulated loss of each datagram, each way
	ma                  bool          // send Message-Authenticator
	edge                time.Duration // send nothing in the last edge of a time step

	pid      int           // server process to watch (CPU, RSS), 0 = none
	state    string        // file keeping each user's last time step across runs
	progress time.Duration // progress line interval, 0 = none
	rcvbuf   int           // SO_RCVBUF of each socket
	// reuseUnanswered lets a user whose request got no answer at all be
	// sent again in the same time step, as a user tries again after a
	// timeout (under overload there are not enough users otherwise). If
	// the server did commit the first request, the second is a replay and
	// is rightly rejected.
	reuseUnanswered bool
	out             io.Writer // progress lines
}

// counters are shared by all sockets.
type counters struct {
	sent, retrans, answered, accepts, rejects, challenges, others atomic.Int64
	timeouts, rejRetrans, invalid, stray, lostReq, lostRep        atomic.Int64
	noID, noUser, noEdge                                          atomic.Int64
}

// slot is one RADIUS Identifier of a socket.
type slot struct {
	used     bool
	retrans  bool
	tries    int
	user     int32
	auth     [16]byte
	prevAuth [16]byte  // of the request this ID carried before: a late reply to it is no anomaly
	first    time.Time // first transmission
	gen      uint32    // (re)transmissions of this ID so far: tells stale expiries apart
	n        int
	pkt      [maxRequest]byte
}

// sock is one UDP socket of one simulated NAS, with its own 256 IDs and its
// own share of the users (user u belongs to socket u mod sockets).
type sock struct {
	conn   *net.UDPConn
	nasIP  [4]byte
	nasID  []byte
	window int

	mu    sync.Mutex
	slots [256]slot
	free  []byte // free IDs
	inUse int
	exp   expiries // when each slot in use is due for a retransmit or giving up
	pool  userPool
	lat   hist
	wake  chan struct{} // a slot was freed (closed loop)
}

// userPool hands out a socket's users so that each is sent at most once per
// time step: a FIFO in order of last use (its head has the oldest step, so if
// the head is not free, nobody is) and, first, with --reuse-unanswered, the
// users whose last request got no answer at all (the NAS gave up; a user
// tries again, possibly with the same code).
type userPool struct {
	ring  []int32
	head  int
	n     int
	retry []int32
	last  []uint32 // shared by all pools: last step each user was sent in
}

func (p *userPool) take(step int64) (int32, bool) {
	if k := len(p.retry); k > 0 {
		u := p.retry[k-1]
		p.retry = p.retry[:k-1]
		p.last[u] = uint32(step)
		return u, true
	}
	if p.n == 0 {
		return 0, false
	}
	u := p.ring[p.head]
	if int64(p.last[u]) >= step {
		return 0, false
	}
	p.head = (p.head + 1) % len(p.ring)
	p.n--
	p.last[u] = uint32(step)
	return u, true
}

func (p *userPool) done(u int32, answered bool) {
	if !answered {
		p.retry = append(p.retry, u)
		return
	}
	p.ring[(p.head+p.n)%len(p.ring)] = u
	p.n++
}

// loadResult is the summary of a run (the --json output).
type loadResult struct {
	Target      string  `json:"target"`
	Loop        string  `json:"loop"` // "open" or "closed"
	OfferedRate float64 `json:"offered_rate,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Users       int     `json:"users"`
	NAS         int     `json:"nas"`
	Sockets     int     `json:"sockets"`
	CodeOnly    bool    `json:"code_only"`
	Loss        float64 `json:"loss"`

	WindowS     float64 `json:"window_s"`  // the measured interval
	ElapsedS    float64 `json:"elapsed_s"` // until the last request was settled
	Rate        float64 `json:"rate"`      // answers per second in the window
	AcceptRate  float64 `json:"accept_rate"`
	Sent        int64   `json:"sent"` // new requests (not counting retransmits)
	Retransmits int64   `json:"retransmits"`
	Answered    int64   `json:"answered"`
	Accepts     int64   `json:"accepts"`
	Rejects     int64   `json:"rejects"`
	Challenges  int64   `json:"challenges"`
	Others      int64   `json:"others"`
	Timeouts    int64   `json:"timeouts"` // no answer after every retransmit
	// RejectsAfterRetransmit counts Rejects of requests that were
	// retransmitted: with a reply cache they must be 0.
	RejectsAfterRetransmit int64 `json:"rejects_after_retransmit"`
	Invalid                int64 `json:"invalid"` // replies with a wrong authenticator or length
	Stray                  int64 `json:"stray"`   // late replies: to a request given up already, or a duplicate
	LostRequests           int64 `json:"lost_requests"`
	LostReplies            int64 `json:"lost_replies"`
	NotSentNoID            int64 `json:"not_sent_no_id"`   // open loop: all 256 IDs of a socket busy
	NotSentNoUser          int64 `json:"not_sent_no_user"` // every user already sent in this time step
	NotSentEdge            int64 `json:"not_sent_edge"`    // open loop: due in the --edge of a time step

	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`

	ServerCPUPct  float64 `json:"server_cpu_pct,omitempty"`
	ServerUsPerRq float64 `json:"server_us_per_req,omitempty"`
	ServerRSSMiB  float64 `json:"server_rss_max_mib,omitempty"`
	ServerHWMMiB  float64 `json:"server_rss_peak_mib,omitempty"` // VmHWM: peak since the server started
	GenCPUPct     float64 `json:"generator_cpu_pct"`
	GenUsPerRq    float64 `json:"generator_us_per_req"`
	// The whole machine over the window, all CPUs and every process
	// (/proc/stat): what the server and the generator left idle shows
	// whether the server was bound by the CPU or by something else.
	MachineBusyPct   float64 `json:"machine_busy_pct"`
	MachineIOWaitPct float64 `json:"machine_iowait_pct"`
}

type run struct {
	o          loadOpts
	socks      []*sock
	c          counters
	last       []uint32
	stop       atomic.Bool
	issued     atomic.Int64  // requests mode: tickets taken
	settled    atomic.Int64  // requests answered or given up
	lastAns    atomic.Int64  // unix ns of the last settled request
	stopCh     chan struct{} // closed with stop
	allDone    chan struct{} // requests mode: closed when every request is settled
	timersStop chan struct{}
	doneOne    sync.Once
	ctx        context.Context
}

// halt stops the senders.
func (r *run) halt() {
	if r.stop.CompareAndSwap(false, true) {
		close(r.stopCh)
	}
}

// settle counts one request as finished (answered or given up).
func (r *run) settle(now time.Time) {
	r.lastAns.Store(now.UnixNano())
	if n := r.settled.Add(1); r.o.requests > 0 && n >= int64(r.o.requests) {
		r.doneOne.Do(func() { close(r.allDone) })
	}
}

func runLoad(ctx context.Context, o loadOpts) (*loadResult, error) {
	if o.rate <= 0 && o.conc <= 0 {
		return nil, errors.New("give --rate (open loop) or --concurrency (closed loop)")
	}
	if o.duration <= 0 && o.requests <= 0 {
		return nil, errors.New("give --duration or --requests")
	}
	if !o.nasBase.Is4() {
		return nil, fmt.Errorf("--nas-address %s: must be IPv4", o.nasBase)
	}
	nsock := o.nas * o.sockets
	if nsock < 1 {
		return nil, errors.New("--nas and --sockets must be at least 1")
	}
	if o.rate <= 0 && o.conc > 256*nsock {
		return nil, fmt.Errorf("--concurrency %d needs more than 256 IDs per socket; raise --nas or --sockets to at least %d sockets", o.conc, (o.conc+255)/256)
	}
	if o.users.n < nsock {
		return nil, fmt.Errorf("%d users for %d sockets: need at least one user per socket", o.users.n, nsock)
	}
	if o.timeoutMax < o.timeout {
		o.timeoutMax = o.timeout
	}
	r := &run{o: o, stopCh: make(chan struct{}), allDone: make(chan struct{}), timersStop: make(chan struct{}), ctx: ctx}
	if err := r.loadState(); err != nil {
		return nil, err
	}
	if err := r.open(); err != nil {
		r.close()
		return nil, err
	}
	defer r.close()
	return r.run()
}

func (r *run) loadState() error {
	n := r.o.users.n
	r.last = make([]uint32, n)
	if r.o.state == "" {
		return nil
	}
	b, err := os.ReadFile(r.o.state)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(b) != 8+4*n || string(b[:4]) != "RBST" || int(binary.LittleEndian.Uint32(b[4:8])) != n {
		return fmt.Errorf("--state %s: not a state file for %d users (delete it to start afresh)", r.o.state, n)
	}
	for i := range r.last {
		r.last[i] = binary.LittleEndian.Uint32(b[8+4*i:])
	}
	return nil
}

func (r *run) saveState() error {
	if r.o.state == "" {
		return nil
	}
	b := make([]byte, 8+4*len(r.last))
	copy(b, "RBST")
	binary.LittleEndian.PutUint32(b[4:], uint32(len(r.last)))
	for i, s := range r.last {
		binary.LittleEndian.PutUint32(b[8+4*i:], s)
	}
	tmp := r.o.state + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.o.state)
}

// open creates the sockets and deals out the users and the window.
func (r *run) open() error {
	o := r.o
	nsock := o.nas * o.sockets
	base := o.nasBase.As4()
	ip := binary.BigEndian.Uint32(base[:])
	for i := range nsock {
		nas := i / o.sockets
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], ip+uint32(nas))
		laddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(a), 0))
		conn, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(o.addr))
		if err != nil {
			return fmt.Errorf("NAS %d (%s): %w", nas, netip.AddrFrom4(a), err)
		}
		if o.rcvbuf > 0 {
			_ = conn.SetReadBuffer(o.rcvbuf)
		}
		s := &sock{conn: conn, nasIP: a, nasID: []byte("radotp-bench-" + strconv.Itoa(nas)), wake: make(chan struct{}, 1)}
		s.window = 256
		if o.rate <= 0 {
			s.window = o.conc / nsock
			if i < o.conc%nsock {
				s.window++
			}
		}
		for id := range s.window {
			s.free = append(s.free, byte(s.window-1-id))
		}
		s.pool.last = r.last
		r.socks = append(r.socks, s)
	}
	// Deal the users: user u to socket u mod nsock, each socket's users in
	// order of their last step (oldest first), then by index.
	for i, s := range r.socks {
		for u := i; u < o.users.n; u += nsock {
			s.pool.ring = append(s.pool.ring, int32(u))
		}
		slices.SortStableFunc(s.pool.ring, func(a, b int32) int { return int(r.last[a]) - int(r.last[b]) })
		s.pool.n = len(s.pool.ring)
	}
	return nil
}

func (r *run) close() {
	for _, s := range r.socks {
		s.conn.Close()
	}
}

func (r *run) step(now time.Time) int64 { return now.Unix() / r.o.period }

// inEdge reports whether now is within the last edge of a time step: a code
// sent now could expire before a server that accepts only the current step
// checks it.
func (r *run) inEdge(now time.Time) bool {
	p := time.Duration(r.o.period) * time.Second
	return r.o.edge > 0 && p-time.Duration(now.UnixNano()%int64(p)) < r.o.edge
}

// waitEdge sleeps past the end of the time step if now is within its edge.
func (r *run) waitEdge(now time.Time) {
	if r.inEdge(now) {
		p := time.Duration(r.o.period) * time.Second
		time.Sleep(p - time.Duration(now.UnixNano()%int64(p)) + time.Millisecond)
	}
}

// eligible counts the users that may be sent in the current step.
func (r *run) eligible() int {
	st := uint32(r.step(time.Now()))
	n := 0
	for _, l := range r.last {
		if l < st {
			n++
		}
	}
	return n
}

func (r *run) run() (*loadResult, error) {
	o := r.o
	// A fixed number of requests needs that many fresh users: wait for the
	// next step if this one has used up too many.
	if o.requests > 0 && r.eligible() < o.requests {
		now := time.Now()
		p := time.Duration(o.period) * time.Second
		wait := p - time.Duration(now.UnixNano()%int64(p)) + 10*time.Millisecond
		if o.out != nil {
			fmt.Fprintf(o.out, "radotp-bench: fewer than %d users are unused in this time step; waiting %s for the next\n", o.requests, wait.Round(time.Millisecond))
		}
		select {
		case <-time.After(wait):
		case <-r.ctx.Done():
			return nil, r.ctx.Err()
		}
	}
	r.waitEdge(time.Now())

	var cpu0 time.Duration
	if o.pid > 0 {
		c, err := procCPU(o.pid)
		if err != nil {
			return nil, fmt.Errorf("--pid %d: %w", o.pid, err)
		}
		cpu0 = c
	}
	self0 := selfCPU()
	mach0, _ := machineCPU()
	start := time.Now()

	var wg sync.WaitGroup
	for _, s := range r.socks {
		wg.Add(1)
		go func() { defer wg.Done(); r.receive(s) }()
	}
	var senders sync.WaitGroup
	if o.rate > 0 {
		// Open loop: a few pacers, each for every n-th socket, rather than a
		// goroutine per socket woken for each of its requests.
		n := min(len(r.socks), runtime.GOMAXPROCS(0))
		for k := range n {
			var own []*sock
			for i := k; i < len(r.socks); i += n {
				own = append(own, r.socks[i])
			}
			share := o.rate * float64(len(own)) / float64(len(r.socks))
			senders.Add(1)
			go func() { defer senders.Done(); r.pace(own, share, start) }()
		}
	} else {
		for _, s := range r.socks {
			senders.Add(1)
			go func() { defer senders.Done(); r.send(s) }()
		}
	}
	tick := min(5*time.Millisecond, o.timeout/10)
	timerDone := make(chan struct{})
	go func() { defer close(timerDone); r.timers(max(tick, time.Millisecond)) }()

	// Watch: progress, server RSS, the end of the window.
	var rssMax int64
	var windowEnd time.Time
	var snap struct {
		answered, accepts int64
		cpu, self         time.Duration
		mach              machineTicks
	}
	takeSnap := func(now time.Time) {
		windowEnd = now
		snap.answered, snap.accepts = r.c.answered.Load(), r.c.accepts.Load()
		snap.self = selfCPU()
		snap.mach, _ = machineCPU()
		if o.pid > 0 {
			snap.cpu, _ = procCPU(o.pid)
		}
	}
	sampler := time.NewTicker(100 * time.Millisecond)
	defer sampler.Stop()
	lastProg, lastAns := start, int64(0)
	sendersDone := make(chan struct{})
	go func() { senders.Wait(); close(sendersDone) }()
	var endTimer <-chan time.Time
	if o.duration > 0 {
		endTimer = time.After(time.Until(start.Add(o.duration)))
	}
	interrupted := false
	ctxDone := r.ctx.Done()
	for finished := false; !finished; {
		select {
		case <-endTimer:
			takeSnap(time.Now())
			r.halt()
			endTimer = nil
		case <-r.allDone:
			takeSnap(time.Unix(0, r.lastAns.Load()))
			r.halt()
			finished = true
		case <-ctxDone:
			ctxDone = nil // closed: once is enough
			if windowEnd.IsZero() {
				takeSnap(time.Now())
			}
			r.halt()
			interrupted = true
		case <-sendersDone:
			sendersDone = nil
			finished = r.inFlight() == 0
		case now := <-sampler.C:
			if o.pid > 0 {
				if rss, _, err := procMem(o.pid); err == nil {
					rssMax = max(rssMax, rss)
				}
			}
			if sendersDone == nil && r.inFlight() == 0 {
				finished = true
			}
			if o.progress > 0 && now.Sub(lastProg) >= o.progress && o.out != nil {
				ans := r.c.answered.Load()
				fmt.Fprintf(o.out, "radotp-bench: %5.1fs sent %d  answered %d (%.0f/s)  accept %d  reject %d  timeout %d  retransmit %d  in flight %d%s\n",
					now.Sub(start).Seconds(), r.c.sent.Load(), ans, float64(ans-lastAns)/now.Sub(lastProg).Seconds(),
					r.c.accepts.Load(), r.c.rejects.Load(), r.c.timeouts.Load(), r.c.retrans.Load(), r.inFlight(), rssNote(rssMax))
				lastProg, lastAns = now, ans
			}
		}
	}
	end := time.Now()
	if windowEnd.IsZero() { // senders stopped on their own (requests mode)
		takeSnap(time.Unix(0, max(r.lastAns.Load(), start.UnixNano()+1)))
	}
	r.halt()
	close(r.timersStop)
	for _, s := range r.socks {
		s.conn.SetReadDeadline(time.Unix(1, 0))
	}
	wg.Wait()
	<-timerDone

	if err := r.saveState(); err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}

	var lat hist
	for _, s := range r.socks {
		lat.merge(&s.lat)
	}
	win := windowEnd.Sub(start).Seconds()
	res := &loadResult{
		Target: o.addr.String(), Users: o.users.n, NAS: o.nas, Sockets: o.sockets, CodeOnly: o.codeOnly, Loss: o.loss,
		WindowS: win, ElapsedS: end.Sub(start).Seconds(),
		Rate: float64(snap.answered) / win, AcceptRate: float64(snap.accepts) / win,
		Sent: r.c.sent.Load(), Retransmits: r.c.retrans.Load(), Answered: r.c.answered.Load(),
		Accepts: r.c.accepts.Load(), Rejects: r.c.rejects.Load(), Challenges: r.c.challenges.Load(), Others: r.c.others.Load(),
		Timeouts: r.c.timeouts.Load(), RejectsAfterRetransmit: r.c.rejRetrans.Load(),
		Invalid: r.c.invalid.Load(), Stray: r.c.stray.Load(), LostRequests: r.c.lostReq.Load(), LostReplies: r.c.lostRep.Load(),
		NotSentNoID: r.c.noID.Load(), NotSentNoUser: r.c.noUser.Load(), NotSentEdge: r.c.noEdge.Load(),
		P50ms: ms(lat.quantile(0.50)), P90ms: ms(lat.quantile(0.90)), P99ms: ms(lat.quantile(0.99)),
		P999ms: ms(lat.quantile(0.999)), MaxMs: ms(lat.quantile(1)),
	}
	if o.rate > 0 {
		res.Loop, res.OfferedRate = "open", o.rate
	} else {
		res.Loop, res.Concurrency = "closed", o.conc
	}
	genCPU := snap.self - self0
	res.GenCPUPct = 100 * genCPU.Seconds() / win
	res.MachineBusyPct, res.MachineIOWaitPct = snap.mach.pct(mach0)
	if snap.answered > 0 {
		res.GenUsPerRq = float64(genCPU.Microseconds()) / float64(snap.answered)
	}
	if o.pid > 0 {
		srv := snap.cpu - cpu0
		res.ServerCPUPct = 100 * srv.Seconds() / win
		if snap.answered > 0 {
			res.ServerUsPerRq = float64(srv.Microseconds()) / float64(snap.answered)
		}
		res.ServerRSSMiB = float64(rssMax) / (1 << 20)
		if rss, hwm, err := procMem(o.pid); err == nil {
			res.ServerRSSMiB = float64(max(rssMax, rss)) / (1 << 20)
			res.ServerHWMMiB = float64(hwm) / (1 << 20)
		}
	}
	if interrupted {
		return res, r.ctx.Err()
	}
	return res, nil
}

func rssNote(rss int64) string {
	if rss == 0 {
		return ""
	}
	return fmt.Sprintf("  server RSS %.0f MiB", float64(rss)/(1<<20))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *run) inFlight() int {
	n := 0
	for _, s := range r.socks {
		s.mu.Lock()
		n += s.inUse
		s.mu.Unlock()
	}
	return n
}

func newRand() *rand.Rand {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.New(rand.NewChaCha8(seed))
}

// wait returns a random retransmission interval.
func (r *run) wait(rng *rand.Rand) time.Duration {
	d := r.o.timeout
	if span := r.o.timeoutMax - r.o.timeout; span > 0 {
		d += time.Duration(rng.Int64N(int64(span) + 1))
	}
	return d
}

// sender is one sending goroutine's state: it allocates nothing per packet.
type sender struct {
	enc      *encoder
	tp       *totp
	rng      *rand.Rand
	name, pw []byte
}

func (r *run) newSender() *sender {
	return &sender{enc: newEncoder(r.o.secret, r.o.ma), tp: newTOTP(), rng: newRand()}
}

// issue's outcomes.
const (
	issued = iota
	issueNoID
	issueNoUser
)

// issue sends a new request from s at now, in time step step, if s has a
// free ID and a user not yet sent in step.
func (r *run) issue(s *sock, g *sender, now time.Time, step int64) int {
	o := r.o
	s.mu.Lock()
	if len(s.free) == 0 {
		s.mu.Unlock()
		return issueNoID
	}
	u, ok := s.pool.take(step)
	if !ok {
		s.mu.Unlock()
		return issueNoUser
	}
	id := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.inUse++
	sl := &s.slots[id]
	sl.used, sl.retrans, sl.tries, sl.user = true, false, 1, u
	binary.LittleEndian.PutUint64(sl.auth[:8], g.rng.Uint64())
	binary.LittleEndian.PutUint64(sl.auth[8:], g.rng.Uint64())
	g.name = o.users.appendName(g.name[:0], int(u))
	g.pw = g.pw[:0]
	if !o.codeOnly {
		g.pw = append(g.pw, o.users.password...)
	}
	g.pw = append(g.pw, g.tp.at(g.tp.hmac(o.users.seed, g.name), step)...)
	pkt := g.enc.request(sl.pkt[:], id, &sl.auth, g.name, g.pw, s.nasIP, s.nasID)
	sl.n = len(pkt)
	sl.first = time.Now()
	s.expireAt(id, sl.first.Add(r.wait(g.rng)))
	s.mu.Unlock()

	r.c.sent.Add(1)
	if o.loss > 0 && g.rng.Float64() < o.loss {
		r.c.lostReq.Add(1)
		return issued
	}
	_, _ = s.conn.Write(pkt) // a failed write is a request that times out
	return issued
}

// send issues s's new requests in closed loop: one whenever an ID is free.
func (r *run) send(s *sock) {
	o := r.o
	g := r.newSender()
	for !r.stop.Load() {
		s.mu.Lock()
		for len(s.free) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
			case <-r.stopCh:
				return
			}
			s.mu.Lock()
		}
		s.mu.Unlock()
		if o.requests > 0 && r.issued.Add(1) > int64(o.requests) {
			return
		}
		now := time.Now()
		if r.inEdge(now) {
			r.waitEdge(now)
			now = time.Now()
		}
		switch r.issue(s, g, now, r.step(now)) {
		case issued:
			continue
		case issueNoID: // not while this goroutine is the only one taking s's IDs
			r.unissue()
			continue
		}
		r.unissue()
		// Every user of this socket has been sent in this step; wait for
		// the next one.
		p := time.Duration(o.period) * time.Second
		select {
		case <-time.After(p - time.Duration(now.UnixNano()%int64(p)) + time.Millisecond):
		case <-r.stopCh:
			return
		}
	}
}

// paceGap is the shortest sleep of an open-loop pacer: below it, the
// requests due are sent back to back (a timer wake-up per request cost the
// generator more CPU than the sends at 165k/s).
const paceGap = 200 * time.Microsecond

// pace issues new requests in open loop at rate per second, round robin over
// socks, until the run stops. Requests due while it slept go out together.
func (r *run) pace(socks []*sock, rate float64, start time.Time) {
	o := r.o
	g := r.newSender()
	interval := time.Duration(float64(time.Second) / rate)
	next := start.Add(time.Duration(g.rng.Int64N(int64(interval) + 1)))
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := 0; !r.stop.Load(); {
		now := time.Now()
		if d := next.Sub(now); d > 0 {
			t.Reset(max(d, paceGap))
			select {
			case <-t.C:
			case <-r.stopCh:
				return
			}
			continue
		}
		step := r.step(now)
		edge := r.inEdge(now)
		for !next.After(now) && !r.stop.Load() {
			next = next.Add(interval)
			if o.requests > 0 && r.issued.Add(1) > int64(o.requests) {
				return
			}
			if edge {
				// The requests due now are not sent at all, rather than
				// all at once after the edge (a burst that would
				// overflow the server's socket buffer).
				r.c.noEdge.Add(1)
				r.unissue()
				continue
			}
			s := socks[i]
			i = (i + 1) % len(socks)
			switch r.issue(s, g, now, step) {
			case issueNoID:
				r.c.noID.Add(1)
				r.unissue()
			case issueNoUser:
				r.c.noUser.Add(1)
				r.unissue()
			}
		}
	}
}

// unissue gives back a ticket taken for a request that was not sent.
func (r *run) unissue() {
	if r.o.requests > 0 {
		r.issued.Add(-1)
	}
}

// receive reads s's replies until the run ends.
func (r *run) receive(s *sock) {
	o := r.o
	enc := newEncoder(o.secret, o.ma)
	rng := newRand()
	buf := make([]byte, 4096)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			// ECONNREFUSED (nothing listens yet) and the like: the
			// requests time out.
			time.Sleep(time.Millisecond)
			continue
		}
		if o.loss > 0 && rng.Float64() < o.loss {
			r.c.lostRep.Add(1)
			continue
		}
		now := time.Now()
		if n < 20 {
			r.c.invalid.Add(1)
			continue
		}
		id := buf[1]
		s.mu.Lock()
		sl := &s.slots[id]
		if !sl.used || !enc.validReply(buf[:n], &sl.auth) {
			// A late reply (the request was given up, perhaps its ID
			// already carries the next one) or a wrong one.
			late := enc.validReply(buf[:n], &sl.prevAuth)
			s.mu.Unlock()
			if late {
				r.c.stray.Add(1)
			} else {
				r.c.invalid.Add(1)
			}
			continue
		}
		retrans := sl.retrans
		s.lat.add(now.Sub(sl.first))
		r.free(s, id, true)
		s.mu.Unlock()

		r.c.answered.Add(1)
		switch buf[0] {
		case codeAccessAccept:
			r.c.accepts.Add(1)
		case codeAccessReject:
			r.c.rejects.Add(1)
			if retrans {
				r.c.rejRetrans.Add(1)
			}
		case codeAccessChallenge:
			r.c.challenges.Add(1)
		default:
			r.c.others.Add(1)
		}
		r.settle(now)
	}
}

// free releases slot id of s (s.mu held).
func (r *run) free(s *sock, id byte, answered bool) {
	sl := &s.slots[id]
	sl.used = false
	sl.prevAuth = sl.auth
	s.inUse--
	s.free = append(s.free, id)
	s.pool.done(sl.user, answered || !r.o.reuseUnanswered)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// timers retransmits requests whose wait is over and gives up on those out
// of retransmits, until the run has finished.
func (r *run) timers(tick time.Duration) {
	o := r.o
	t := time.NewTicker(tick)
	defer t.Stop()
	rng := newRand()
	out := make([]byte, 0, 256*maxRequest) // retransmissions of one socket, back to back
	var sizes []int
	for {
		select {
		case <-t.C:
		case <-r.timersStop:
			return
		}
		now := time.Now()
		for _, s := range r.socks {
			s.mu.Lock()
			out, sizes = out[:0], sizes[:0]
			for len(s.exp) > 0 && !now.Before(s.exp[0].at) {
				e := s.exp.pop()
				sl := &s.slots[e.id]
				if !sl.used || sl.gen != e.gen {
					continue // answered, or retransmitted since
				}
				if sl.tries > o.retries {
					r.free(s, e.id, false)
					r.c.timeouts.Add(1)
					r.settle(now)
					continue
				}
				sl.tries++
				sl.retrans = true
				s.expireAt(e.id, now.Add(r.wait(rng)))
				out = append(out, sl.pkt[:sl.n]...)
				sizes = append(sizes, sl.n)
			}
			s.mu.Unlock()
			off := 0
			for _, n := range sizes {
				r.c.retrans.Add(1)
				if o.loss > 0 && rng.Float64() < o.loss {
					r.c.lostReq.Add(1)
				} else {
					_, _ = s.conn.Write(out[off : off+n])
				}
				off += n
			}
		}
	}
}

// expireAt sets slot id's next retransmission or giving up to at (s.mu held).
func (s *sock) expireAt(id byte, at time.Time) {
	sl := &s.slots[id]
	sl.gen++
	s.exp.push(expiry{at: at, id: id, gen: sl.gen})
}

// expiry is when a slot's wait ends, for the transmission gen of the slot.
type expiry struct {
	at  time.Time
	gen uint32
	id  byte
}

// expiries is a min-heap by time. Entries of slots answered or sent again
// since stay until their time and are then skipped: checking a socket costs
// a look at the earliest entry, not a scan of its 256 IDs.
type expiries []expiry

func (h *expiries) push(e expiry) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q[i].at.Before(q[p].at) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *expiries) pop() expiry {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(q) {
			break
		}
		if c+1 < len(q) && q[c+1].at.Before(q[c].at) {
			c++
		}
		if !q[c].at.Before(q[i].at) {
			break
		}
		q[i], q[c] = q[c], q[i]
		i = c
	}
	*h = q
	return top
}
