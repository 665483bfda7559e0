// Package smtptest is a small SMTP server on loopback for tests: it accepts
// every message (no TLS, no AUTH) and hands it to the test.
package smtptest

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one received message.
type Message struct {
	From string   // MAIL FROM address
	To   []string // RCPT TO addresses
	Data string   // headers and body, CRLF turned into LF, dot-stuffing removed
}

// Header returns the first header field name of the message ("" if none).
func (m Message) Header(name string) string {
	head, _, _ := strings.Cut(m.Data, "\n\n")
	for line := range strings.SplitSeq(head, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Body returns the text after the header.
func (m Message) Body() string {
	_, body, _ := strings.Cut(m.Data, "\n\n")
	return body
}

// Server is a running test SMTP server.
type Server struct {
	Addr string // host:port
	Host string
	Port int

	ln       net.Listener
	messages chan Message
	mu       sync.Mutex
	reject   bool
	wg       sync.WaitGroup
}

// Start starts a server on 127.0.0.1:0 that stops when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr)
	s := &Server{Addr: a.String(), Host: "127.0.0.1", Port: a.Port, ln: ln, messages: make(chan Message, 100)}
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// Wait returns the next message, failing the test after timeout.
func (s *Server) Wait(tb testing.TB, timeout time.Duration) Message {
	tb.Helper()
	select {
	case m := <-s.messages:
		return m
	case <-time.After(timeout):
		tb.Fatalf("smtptest: no message within %s", timeout)
		return Message{}
	}
}

// None fails the test if a message arrives within d.
func (s *Server) None(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case m := <-s.messages:
		tb.Fatalf("smtptest: unexpected message to %v:\n%s", m.To, m.Data)
	case <-time.After(d):
	}
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
		}()
	}
}

func (s *Server) session(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(line string) {
		w.WriteString(line + "\r\n")
		w.Flush()
	}
	reply("220 smtptest ESMTP")
	var m Message
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply("250-smtptest")
			reply("250-8BITMIME")
			reply("250 SIZE 1048576")
		case "HELO":
			reply("250 smtptest")
		case "MAIL":
			m = Message{From: addr(arg)}
			reply("250 OK")
		case "RCPT":
			m.To = append(m.To, addr(arg))
			reply("250 OK")
		case "DATA":
			reply("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				l = strings.TrimRight(l, "\r\n")
				if l == "." {
					break
				}
				b.WriteString(strings.TrimPrefix(l, ".") + "\n")
			}
			m.Data = b.String()
			s.mu.Lock()
			reject := s.reject
			s.mu.Unlock()
			if reject {
				reply("554 rejected by smtptest")
				continue
			}
			s.messages <- m
			reply("250 OK queued")
		case "RSET":
			m = Message{}
			reply("250 OK")
		case "NOOP":
			reply("250 OK")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

// SetReject makes the server refuse (v true) or accept every message at the
// end of DATA.
func (s *Server) SetReject(v bool) {
	s.mu.Lock()
	s.reject = v
	s.mu.Unlock()
}

// addr takes the address out of "FROM:<a@b>" or "TO:<a@b> SIZE=1".
func addr(arg string) string {
	_, rest, _ := strings.Cut(arg, ":")
	rest = strings.TrimSpace(rest)
	if i := strings.IndexByte(rest, '>'); strings.HasPrefix(rest, "<") && i > 0 {
		return rest[1:i]
	}
	return rest
}
