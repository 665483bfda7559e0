package radius

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/radotp/radotp/verifier"
)

// ErrServerClosed is returned by Serve and ListenAndServe when they are
// called after Shutdown.
var ErrServerClosed = errors.New("radius: server closed")

// Defaults for the Server fields left zero.
const (
	DefaultWorkers        = 128
	DefaultQueueSize      = 256
	DefaultReplyCacheTTL  = 30 * time.Second
	DefaultReplyCacheSize = 1 << 20
	DefaultRequestTimeout = 5 * time.Second
)

const (
	readBufferSize = 65536 // larger than any UDP datagram, so oversize is seen
	logEvery       = 10 * time.Second
)

// Server is a RADIUS authentication server. Its exported fields configure it;
// the zero value of each has the documented default. Fields must not change
// once the Server has handled a packet. SetClients must be called before
// Serve.
type Server struct {
	// Verifier decides Access-Requests. Required.
	Verifier Verifier
	// Observer is told the fate of every packet. nil: nobody is told.
	Observer Observer
	// Logger receives one Info line per decision and rate-limited warnings
	// about dropped packets. nil: slog.Default().
	Logger *slog.Logger
	// Workers is the number of goroutines calling the Verifier. They block on
	// storage and password hashing, which bound CPU use themselves. 0: 128.
	Workers int
	// QueueSize is how many requests may wait for a worker. When it is
	// full the server stops reading: more wait in the socket's receive
	// buffer, and what overflows that the kernel drops (counted as
	// overload on Linux). 0: 256.
	QueueSize int
	// ReplyCacheTTL is how long a request is remembered after it arrived,
	// to answer its retransmissions. It should exceed the time a NAS keeps
	// retransmitting. 0: 30 s.
	ReplyCacheTTL time.Duration
	// ReplyCacheSize bounds the requests remembered; when it is reached, new
	// requests are dropped until entries expire. 0: 1048576.
	ReplyCacheSize int
	// RequestTimeout is the deadline of the context given to Verify. 0: 5 s.
	RequestTimeout time.Duration
	// Now tells the time. nil: time.Now.
	Now func() time.Time

	clients atomic.Pointer[Clients]

	initOnce  sync.Once
	log       *slog.Logger
	obs       Observer
	now       func() time.Time
	timeout   time.Duration
	cache     *replyCache
	limiter   *logLimiter
	ctx       context.Context // cancelled when Shutdown gives up waiting, or when done
	cancel    context.CancelFunc
	done      chan struct{} // closed when every request is finished after Shutdown
	forced    chan struct{} // closed when Shutdown gave up waiting
	forceOnce sync.Once

	inFlight atomic.Int64 // requests a worker is deciding now

	mu      sync.Mutex
	closing bool
	conns   map[net.PacketConn]struct{}
	queue   chan *request // nil until the first Serve; closed by drain
	readers sync.WaitGroup
	workers sync.WaitGroup
}

// request is an admitted Access-Request or Status-Server on its way to a
// reply.
type request struct {
	client *Client
	pkt    []byte         // the packet, cut to its Length, owned by the request
	src    netip.AddrPort // the source, IPv4-mapped addresses unmapped
	entry  cacheEntry
	start  time.Time
	hasPwd bool
	dst    dest // where to send the reply (the read loop fills it in)
}

// dest is where a reply goes.
type dest struct {
	conn net.PacketConn
	udp  *net.UDPConn // conn as a *net.UDPConn, if it is one
	ap   netip.AddrPort
	addr net.Addr
}

func (d *dest) send(b []byte) error {
	if d.udp != nil {
		_, err := d.udp.WriteToUDPAddrPort(b, d.ap)
		return err
	}
	_, err := d.conn.WriteTo(b, d.addr)
	return err
}

// SetClients makes c the set of clients, at once for every following packet
// (a configuration reload). Requests already admitted finish with the client
// they were admitted with.
func (s *Server) SetClients(c *Clients) {
	s.clients.Store(c)
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.Default()
		}
		s.obs = s.Observer
		if s.obs == nil {
			s.obs = nopObserver{}
		}
		s.now = s.Now
		if s.now == nil {
			s.now = time.Now
		}
		s.timeout = orDefault(s.RequestTimeout, DefaultRequestTimeout)
		s.cache = newReplyCache(orDefault(s.ReplyCacheTTL, DefaultReplyCacheTTL),
			orDefault(s.ReplyCacheSize, DefaultReplyCacheSize))
		s.limiter = newLogLimiter(logEvery)
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.done = make(chan struct{})
		s.forced = make(chan struct{})
		s.conns = make(map[net.PacketConn]struct{})
	})
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// ListenAndServe listens on the UDP address addr and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("radius: %w", err)
	}
	return s.Serve(conn)
}

// Serve reads requests from conn and answers them until Shutdown. It returns
// nil after Shutdown, once the requests read from conn are answered (or
// Shutdown gave up waiting), or an error if conn fails. It closes conn before
// it returns. Serve may be called for several connections at once.
func (s *Server) Serve(conn net.PacketConn) error {
	defer conn.Close()
	if s.Verifier == nil {
		return errors.New("radius: Server.Verifier is nil")
	}
	if s.clients.Load() == nil {
		return errors.New("radius: no clients: call SetClients before Serve")
	}
	s.init()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.queue == nil {
		s.queue = make(chan *request, orDefault(s.QueueSize, DefaultQueueSize))
		for range orDefault(s.Workers, DefaultWorkers) {
			s.workers.Add(1)
			go s.work(s.queue)
		}
		go s.expireCache()
	}
	s.conns[conn] = struct{}{}
	s.readers.Add(1)
	s.mu.Unlock()

	err := s.readLoop(conn)

	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.readers.Done()
	if err != nil {
		return err
	}
	select { // let the workers send their replies through conn
	case <-s.done:
	case <-s.forced:
	}
	return nil
}

// Shutdown stops reading new packets, lets the requests already read finish
// and send their replies, and returns nil when they have. If ctx is done
// first, Shutdown cancels the contexts of running Verify calls, lets Serve
// return and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		past := time.Unix(1, 0)
		for c := range s.conns {
			// Unblock the read loop but keep conn open for the replies.
			_ = c.SetReadDeadline(past)
		}
		go s.drain()
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.forceOnce.Do(func() {
			close(s.forced)
			s.cancel()
		})
		return ctx.Err()
	}
}

// drain waits for the read loops to stop, then for the workers to empty the
// queue, and closes s.done.
func (s *Server) drain() {
	s.readers.Wait()
	s.mu.Lock()
	q := s.queue
	s.mu.Unlock()
	if q != nil {
		close(q) // no read loop is left to send on it
	}
	s.workers.Wait()
	s.cancel()
	close(s.done)
}

func (s *Server) closingNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// readLoop reads datagrams from conn until Shutdown (nil) or a failure of
// conn (an error).
func (s *Server) readLoop(conn net.PacketConn) error {
	buf := make([]byte, readBufferSize)
	udp, _ := conn.(*net.UDPConn)
	var oob []byte
	var kernelDrops uint32 // the socket's drop counter as last seen
	rcvbuf := 0            // the socket's receive buffer, for the drop warning
	if udp != nil && enableDropCount(udp) {
		oob = make([]byte, 64)
		rcvbuf = ReceiveBuffer(udp)
	}
	for {
		var (
			n    int
			ap   netip.AddrPort
			addr net.Addr
			err  error
		)
		if udp != nil {
			var oobn int
			n, oobn, _, ap, err = udp.ReadMsgUDPAddrPort(buf, oob)
			if oobn > 0 {
				if c, ok := dropCount(oob[:oobn]); ok && c != kernelDrops {
					s.kernelDropped(c-kernelDrops, rcvbuf)
					kernelDrops = c
				}
			}
		} else {
			n, addr, err = conn.ReadFrom(buf)
			ap = addrPortOf(addr)
		}
		if err != nil {
			if s.closingNow() {
				return nil
			}
			var ne net.Error
			if errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) {
				return fmt.Errorf("radius: read: %w", err)
			}
			if ok, suppressed := s.allowLog(slog.LevelWarn, "read_error"); ok {
				s.log.Warn("radius: read failed", "error", err, "suppressed", suppressed)
			}
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
			continue
		}
		s.receive(buf[:n], dest{conn: conn, udp: udp, ap: ap, addr: addr})
	}
}

// addrPortOf returns the address and port of a non-UDP net.Addr, or the zero
// AddrPort, which no client matches.
func addrPortOf(a net.Addr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// receive runs steps 1-5 for one datagram read into b (reused after it
// returns) from d: it answers a retransmission or a Status-Server at once and
// queues an Access-Request for a worker.
func (s *Server) receive(b []byte, d dest) {
	defer func() {
		if r := recover(); r != nil {
			s.obs.Dropped(DropMalformed)
			s.log.Error("radius: panic while reading a request", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	req, resend, drop := s.admit(b, d.ap)
	switch {
	case drop != "":
	case resend != nil:
		// Counted before the send, so that whoever got the reply also sees
		// it in the metrics; a failed send is logged on top.
		s.obs.Resent()
		if err := d.send(resend); err != nil {
			s.sendFailed(err)
		}
	case req.pkt[0] == codeStatusServer:
		req.dst = d
		s.serveRequest(req) // cheap: no Verifier call
	default:
		req.dst = d
		// A full queue holds the read loop back instead of dropping: the
		// datagrams that arrive meanwhile wait in the socket's receive
		// buffer, and those that overflow it the kernel drops without
		// costing a cycle here (counted by kernelDropped). Reading and
		// checking datagrams only to drop them took the CPU the workers
		// needed: under 10x overload goodput was 25 % lower.
		select {
		case s.queue <- req:
		case <-s.forced:
			s.cache.forget(req.entry)
			s.drop(DropOverload, req.src, req.client, "shutting down")
		}
	}
}

// kernelDropped counts n datagrams that the kernel dropped because the
// socket's receive buffer (rcvbuf bytes as the kernel counts them) was full:
// the workers and the queue were busy.
func (s *Server) kernelDropped(n uint32, rcvbuf int) {
	for range n {
		s.obs.Dropped(DropOverload)
	}
	if ok, suppressed := s.allowLog(slog.LevelWarn, "kernel_drop"); ok {
		s.log.Warn("radius: requests dropped", "reason", DropOverload, "count", n,
			"detail", "the socket's receive buffer overflowed while all workers were busy",
			"receive_buffer_kernel_bytes", rcvbuf,
			"hint", "if this comes in short bursts while radotp otherwise keeps up, a larger radius.receive_buffer absorbs them (the kernel counts twice the setting)",
			"suppressed", suppressed)
	}
}

// cacheExpiry is how often the reply cache drops its expired entries
// between requests.
const cacheExpiry = 100 * time.Millisecond

// expireCache drops expired reply cache entries as they expire, until the
// server is done, so that the first request after a quiet spell does not pay
// for a busy spell's entries all at once (300k of them are ~30 ms under the
// cache's lock).
func (s *Server) expireCache() {
	t := time.NewTicker(cacheExpiry)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.cache.len(s.now())
		case <-s.done:
			return
		}
	}
}

// work serves the requests of q until it is closed.
func (s *Server) work(q <-chan *request) {
	defer s.workers.Done()
	for req := range q {
		s.serveRequest(req)
	}
}

// serveRequest runs steps 6-7 for req and sends the reply.
func (s *Server) serveRequest(req *request) {
	defer func() {
		if r := recover(); r != nil {
			s.cache.forget(req.entry)
			s.obs.Dropped(DropStorageError)
			s.log.Error("radius: panic while deciding a request", "panic", r,
				"client", req.client.Name, "source", req.src.String(), "stack", string(debug.Stack()))
		}
	}()
	s.inFlight.Add(1)
	b, kind, drop := s.process(s.ctx, req)
	s.inFlight.Add(-1)
	if drop != "" {
		return
	}
	s.obs.Answered(kind) // before the send: see Resent above
	if err := req.dst.send(b); err != nil {
		s.sendFailed(err)
	}
}

// Load reports the requests being decided now, those waiting in the queue,
// and the entries in the reply cache (for gauges).
func (s *Server) Load() (inFlight, queued, cached int) {
	s.init()
	s.mu.Lock()
	q := s.queue
	s.mu.Unlock()
	if q != nil {
		queued = len(q)
	}
	return int(s.inFlight.Load()), queued, s.cache.len(s.now())
}

func (s *Server) sendFailed(err error) {
	if ok, suppressed := s.allowLog(slog.LevelWarn, "write_error"); ok {
		s.log.Warn("radius: sending a reply failed", "error", err, "suppressed", suppressed)
	}
}

// handle runs steps 1-7 synchronously for the datagram b from src, without
// the queue, and returns the reply to send, or nil and the reason it was
// dropped. The Observer is told as on the network path.
func (s *Server) handle(ctx context.Context, b []byte, src netip.AddrPort) ([]byte, string) {
	s.init()
	req, resend, drop := s.admit(b, src)
	if drop != "" {
		return nil, drop
	}
	if resend != nil {
		s.obs.Resent()
		return resend, ""
	}
	reply, kind, drop := s.process(ctx, req)
	if drop != "" {
		return nil, drop
	}
	s.obs.Answered(kind)
	return reply, ""
}

// admit runs steps 1-4 for the datagram b from src. It returns a request to
// process, or the cached reply of a retransmission, or the reason it dropped
// the datagram (already reported and logged). b is not kept.
func (s *Server) admit(b []byte, src netip.AddrPort) (req *request, resend []byte, drop string) {
	start := s.now()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	cl, ok := s.clients.Load().Lookup(src.Addr())
	if !ok {
		return nil, nil, s.drop(DropUnknownClient, src, nil, "source matches no client")
	}
	c, problem := check(b)
	if problem != "" {
		return nil, nil, s.drop(DropMalformed, src, cl, problem)
	}
	pkt := c.pkt
	switch {
	case c.maOff == 0 && pkt[0] == codeStatusServer:
		return nil, nil, s.drop(DropMissingMessageAuthenticator, src, cl, "Status-Server without Message-Authenticator")
	case c.maOff == 0 && c.proxyState:
		// limit_proxy_state (Blast-RADIUS, CVE-2024-3596): a NAS excused from
		// Message-Authenticator sends no Proxy-State; a proxy must sign.
		return nil, nil, s.drop(DropMissingMessageAuthenticator, src, cl, "Proxy-State without Message-Authenticator")
	case c.maOff == 0 && cl.RequireMessageAuthenticator:
		return nil, nil, s.drop(DropMissingMessageAuthenticator, src, cl, "Access-Request without Message-Authenticator")
	case c.maOff != 0 && !cl.macKey().validMessageAuthenticator(pkt, c.maOff):
		return nil, nil, s.drop(DropBadMessageAuthenticator, src, cl, "wrong Message-Authenticator (is the secret the same on both sides?)")
	}
	key := newCacheKey(src, pkt[1], [16]byte(pkt[4:headerLen]))
	e, reply, state := s.cache.begin(key, start)
	switch state {
	case cacheAnswered:
		return nil, reply, ""
	case cacheInFlight:
		return nil, nil, s.drop(DropDuplicateInFlight, src, cl, "retransmission of a request still in progress")
	case cacheFull:
		return nil, nil, s.drop(DropOverload, src, cl, "reply cache full")
	}
	return &request{
		client: cl,
		pkt:    bytes.Clone(pkt),
		src:    src,
		entry:  e,
		start:  start,
		hasPwd: c.hasPassword,
	}, nil, ""
}

// process runs steps 6-7 for req: it decides, builds the reply and stores it
// in the reply cache. It returns the reply and its kind (one of AnswerKinds),
// or the reason it dropped req (already reported and logged); a dropped
// request is removed from the reply cache.
func (s *Server) process(ctx context.Context, req *request) (b []byte, kind, drop string) {
	cl := req.client
	p, err := radius.Parse(req.pkt, cl.Secret)
	if err != nil { // check let it through: a bug, not an attack
		s.cache.forget(req.entry)
		return nil, "", s.drop(DropMalformed, req.src, cl, "layeh: "+err.Error())
	}
	var proxyStates [][]byte
	for _, avp := range p.Attributes {
		if avp.Type == attrProxyState {
			proxyStates = append(proxyStates, avp.Attribute)
		}
	}

	var r reply
	if req.pkt[0] == codeStatusServer {
		r.code, kind = codeAccessAccept, AnswerStatusServer
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.LogAttrs(ctx, slog.LevelDebug, "radius: status-server answered",
				slog.String("client", cl.Name), slog.String("source", req.src.String()))
		}
	} else {
		d, reason, err := s.decide(ctx, req, p)
		if err != nil {
			s.cache.forget(req.entry)
			why := DropStorageError
			switch {
			case errors.Is(err, verifier.ErrFirstFactorUnavailable):
				why = DropFirstFactorUnavailable
			case errors.Is(err, verifier.ErrBusy):
				why = DropOverload // a flood of one user's requests
			}
			s.obs.Dropped(why)
			if ok, suppressed := s.allowLog(slog.LevelError, why); ok {
				s.log.Error("radius: could not decide, request dropped", "client", cl.Name,
					"source", req.src.String(), "reason", why, "error", err, "suppressed", suppressed)
			}
			return nil, "", why
		}
		switch d.Outcome {
		case verifier.Accept:
			r.code, kind = codeAccessAccept, AnswerAccessAccept
		case verifier.Challenge:
			if len(d.State) == 0 || len(d.State) > maxAttrVal {
				s.log.Error("radius: the verifier returned a Challenge without a State of 1 to 253 bytes; rejecting",
					"client", cl.Name, "state_length", len(d.State))
				d = verifier.Decision{Outcome: verifier.Reject}
				reason = "bad_challenge"
				r.code, kind = codeAccessReject, AnswerAccessReject
				break
			}
			r.code, kind = codeAccessChallenge, AnswerAccessChallenge
			r.state, r.prompt = d.State, d.Prompt
		default:
			if d.Outcome != verifier.Reject {
				reason = "unknown_outcome"
				d.Outcome = verifier.Reject
			}
			r.code, kind = codeAccessReject, AnswerAccessReject
		}
		if s.log.Enabled(ctx, slog.LevelInfo) {
			s.log.LogAttrs(ctx, slog.LevelInfo, "radius: access decision",
				slog.String("user", rfc2865.UserName_GetString(p)),
				slog.String("client", cl.Name),
				slog.String("source", req.src.String()),
				slog.String("outcome", d.Outcome.String()),
				slog.String("reason", reason),
				slog.Duration("duration", s.now().Sub(req.start)))
		}
	}

	b = r.encode(req.pkt, cl.macKey(), proxyStates)
	if b == nil && r.code != codeAccessReject {
		s.log.Error("radius: reply longer than 4096 bytes; rejecting", "client", cl.Name)
		r, kind = reply{code: codeAccessReject}, AnswerAccessReject
		b = r.encode(req.pkt, cl.macKey(), proxyStates)
	}
	if b == nil {
		s.cache.forget(req.entry)
		return nil, "", s.drop(DropMalformed, req.src, cl, "Proxy-State attributes leave no room for a reply")
	}
	s.cache.finish(req.entry, b)
	return b, kind, ""
}

// decide asks the Verifier about the Access-Request req (parsed as p), or
// rejects it without asking when it cannot be a PAP request. reason is what
// the log line says.
func (s *Server) decide(ctx context.Context, req *request, p *radius.Packet) (d verifier.Decision, reason string, err error) {
	cl := req.client
	if !req.hasPwd {
		if ok, suppressed := s.allowLog(slog.LevelWarn, "no_user_password"); ok {
			s.log.Warn("radius: Access-Request without User-Password rejected: CHAP, MS-CHAP and EAP are not supported, configure the client for PAP",
				"client", cl.Name, "source", req.src.String(), "suppressed", suppressed)
		}
		return verifier.Decision{Outcome: verifier.Reject}, "no_user_password", nil
	}
	user, err := rfc2865.UserName_LookupString(p)
	if err != nil {
		return verifier.Decision{Outcome: verifier.Reject}, "no_user_name", nil
	}
	pwd, err := rfc2865.UserPassword_Lookup(p)
	if err != nil {
		return verifier.Decision{}, "", fmt.Errorf("radius: decrypting User-Password: %w", err)
	}
	defer clear(pwd)
	if s.Verifier == nil {
		return verifier.Decision{}, "", errors.New("radius: Server.Verifier is nil")
	}
	a := verifier.Attempt{
		User:           user,
		Password:       pwd,
		State:          rfc2865.State_Get(p),
		Client:         cl.Client,
		CallingStation: rfc2865.CallingStationID_GetString(p),
		Source:         req.src,
		Request:        requestFingerprint(req.src, req.pkt),
	}
	vctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	d, err = s.Verifier.Verify(vctx, a)
	if err != nil {
		return verifier.Decision{}, "", err
	}
	if d.Outcome == verifier.Reject {
		reason = string(d.Reason)
	}
	return d, reason, nil
}

// drop reports and logs (rate-limited) a datagram dropped for reason, and
// returns reason.
func (s *Server) drop(reason string, src netip.AddrPort, cl *Client, detail string) string {
	s.obs.Dropped(reason)
	if ok, suppressed := s.allowLog(slog.LevelWarn, reason); ok {
		name := ""
		if cl != nil {
			name = cl.Name
		}
		s.log.LogAttrs(s.ctx, slog.LevelWarn, "radius: request dropped",
			slog.String("reason", reason), slog.String("client", name),
			slog.String("source", src.String()), slog.String("detail", detail),
			slog.Int("suppressed", suppressed))
	}
	return reason
}

// allowLog reports whether a line at level for key may be logged now (at most
// one per key every 10 s), and how many lines were held back before it.
func (s *Server) allowLog(level slog.Level, key string) (bool, int) {
	if !s.log.Enabled(s.ctx, level) {
		return false, 0
	}
	return s.limiter.allow(key, s.now())
}

// requestFingerprint identifies a request as the reply cache does (RFC 5080
// 2.2.2: source address and port, Identifier, Request Authenticator), in 16
// bytes that the store can keep with a used step.
func requestFingerprint(src netip.AddrPort, pkt []byte) []byte {
	h := sha256.New()
	a := src.Addr().Unmap().As16()
	h.Write(a[:])
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], src.Port())
	h.Write(port[:])
	h.Write(pkt[1:2])  // Identifier
	h.Write(pkt[4:20]) // Request Authenticator
	return h.Sum(nil)[:16]
}
