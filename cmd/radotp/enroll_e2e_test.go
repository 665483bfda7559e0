package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/radotp/radotp/enrollment/smtptest"
)

// The enrollment end-to-end test runs as a user would: the real radotp
// binary, an admin link mailed to a loopback SMTP server, headless Chromium
// (driven over the DevTools protocol on a pipe) opening it, zbarimg reading
// the QR code off a screenshot, oathtool as the phone, the code typed into
// the page, and radclient as the NAS before and after the activation delay.

const enrollTools = "apt-get install chromium zbar-tools oathtool freeradius-utils"

func requireEnrollTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"chromium", "zbarimg", "oathtool", "radclient"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not installed (%s)", tool, enrollTools)
			if os.Getenv("RADOTP_E2E") == "1" {
				t.Fatal("RADOTP_E2E=1: " + msg)
			}
			t.Skip(msg)
		}
	}
}

// freePort returns a TCP port that was free a moment ago (the enrollment
// site's public URL must name its port before the server starts).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const (
	e2eSupport = "the e2e help desk"
	e2ePeriod  = 15              // seconds: the shortest period allowed, so steps pass quickly
	e2eDelay   = 6 * time.Second // the check before activation must fit in it, also on a busy CI machine
)

// writeEnrollConfig writes a config with the enrollment site on port and
// mail to the loopback SMTP server (smtpPort 0: no [smtp]).
func writeEnrollConfig(t *testing.T, dir string, port, smtpPort int) string {
	t.Helper()
	mail := ""
	if smtpPort != 0 {
		mail = fmt.Sprintf("[smtp]\nhost = \"127.0.0.1\"\nport = %d\nfrom = \"radotp <radotp@example.org>\"\ntls = \"none\"\ntimeout = \"5s\"\n", smtpPort)
	}
	cfg := fmt.Sprintf(`
[radius]
listen = "127.0.0.1:0"
[database]
path = "radotp.db"
key_file = "radotp.key"
[totp]
issuer = "E2E VPN"
period = "%ds"
activation_delay = %q
[lockout]
max_failures = 5
duration = "10m"
[metrics]
listen = "127.0.0.1:0"
[enrollment]
listen = "127.0.0.1:%d"
public_url = "http://127.0.0.1:%d"
max_attempts = 3
support_contact = %q
%s
[[client]]
name = "local"
address = "127.0.0.1"
secret = %q
mode = "append"
`, e2ePeriod, e2eDelay.String(), port, port, e2eSupport, mail, e2eSecret)
	p := filepath.Join(dir, "radotp.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var linkURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/enroll/[A-Za-z0-9_-]{43}`)

func TestEnrollEndToEnd(t *testing.T) {
	requireEnrollTools(t)
	dir := t.TempDir()
	mail := smtptest.Start(t)
	port := freePort(t)
	cfg := writeEnrollConfig(t, dir, port, mail.Port)

	mustAdmin(t, cfg, "hunter2\n", "user", "add", "alice", "--email", "alice@example.org", "--password-stdin")
	s := startServer(t, cfg)
	if !strings.Contains(s.logs(), fmt.Sprintf(`msg="enrollment site serving" enrollment=127.0.0.1:%d`, port)) {
		t.Fatalf("enrollment site not started:\n%s", s.logs())
	}

	// The admin mails a link; the CLI prints it too.
	out, errs, code := admin(t, cfg, "", "enroll", "link", "alice", "--email", "--ttl", "1h")
	if code != 0 {
		t.Fatalf("enroll link: exit %d: %s", code, errs)
	}
	link := strings.TrimSpace(out)
	if !linkURL.MatchString(link) || link != linkURL.FindString(out) {
		t.Fatalf("enroll link printed %q", out)
	}
	if !strings.Contains(errs, "mailed to alice@example.org") {
		t.Errorf("enroll link stderr: %q", errs)
	}
	m := mail.Wait(t, 10*time.Second)
	if len(m.To) != 1 || m.To[0] != "alice@example.org" {
		t.Fatalf("link mail to %v", m.To)
	}
	for _, want := range []string{"Subject: Set up your second factor", link, "The link works once, until", "contact " + e2eSupport} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("link mail lacks %q:\n%s", want, m.Data)
		}
	}

	// A phone-sized browser opens the mailed link.
	b := startBrowser(t)
	b.navigate(t, linkURL.FindString(m.Data))
	page1 := b.screenshot(t, filepath.Join(dir, "1-enroll.png"))
	html := b.html(t)
	for _, want := range []string{"Set up your second factor", "Can't scan? Enter this key", "E2E VPN:alice"} {
		if !strings.Contains(html, want) {
			t.Errorf("enrollment page lacks %q", want)
		}
	}

	// A real decoder reads the QR code off the screenshot.
	var zerr bytes.Buffer
	zcmd := exec.Command("zbarimg", "--quiet", "--raw", page1)
	zcmd.Stderr = &zerr // it may complain about D-Bus there
	zb, err := zcmd.Output()
	if err != nil {
		t.Fatalf("zbarimg on the page screenshot: %v: %s", err, zerr.String())
	}
	uri, err := url.Parse(strings.TrimSpace(string(zb)))
	if err != nil || uri.Scheme != "otpauth" || uri.Host != "totp" || uri.Path != "/E2E VPN:alice" {
		t.Fatalf("decoded QR %q (%v)", zb, err)
	}
	q := uri.Query()
	key := q.Get("secret")
	if q.Get("issuer") != "E2E VPN" || q.Get("digits") != "6" || q.Get("period") != strconv.Itoa(e2ePeriod) || q.Get("algorithm") != "SHA1" || len(key) != 32 {
		t.Fatalf("otpauth URI parameters: %s", uri)
	}
	// The key shown for manual entry is the same one.
	if !strings.Contains(html, groupsOf4(key)) {
		t.Errorf("the page's manual key is not the QR code's %s", groupsOf4(key))
	}

	// The phone makes a code; it is typed and submitted.
	codeTime := time.Now()
	typed := oathCode(t, key, codeTime)
	confirmStep := codeTime.Unix() / e2ePeriod
	b.typeInto(t, "#code", typed)
	b.pressEnterAndWait(t)
	b.screenshot(t, filepath.Join(dir, "2-done.png"))
	done := b.text(t)
	confirmed := time.Now()
	okLine := regexp.MustCompile(`Your new two-factor token is registered\. It becomes active at (\d\d:\d\d:\d\d) [A-Z0-9+-]+ \(in (\d) seconds\)\. We sent a confirmation e-mail\.`)
	mm := okLine.FindStringSubmatch(done)
	if mm == nil {
		t.Fatalf("success page:\n%s", done)
	}
	// The time shown is the confirmation's (between codeTime and now) plus the delay.
	shown, _ := time.ParseInLocation("15:04:05", mm[1], time.Local)
	secs := func(t time.Time) int { return (t.Hour()*3600 + t.Minute()*60 + t.Second()) % 86400 }
	lo, hi := secs(codeTime.Add(e2eDelay)), secs(confirmed.Add(e2eDelay))
	if s := secs(shown); mm[2] != strconv.Itoa(int(e2eDelay/time.Second)) || (lo <= hi && (s < lo || s > hi)) {
		t.Errorf("success page says active at %s (in %s seconds); want between %d and %d seconds of the day, in %v",
			mm[1], mm[2], lo, hi, e2eDelay)
	}

	// The confirmation mail.
	m = mail.Wait(t, 10*time.Second)
	for _, want := range []string{"Subject: A new second factor was registered for your account",
		"a new second factor was registered for your account at", "from 127.0.0.1.", "If this was not you, contact " + e2eSupport + " at once."} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("confirmation mail lacks %q:\n%s", want, m.Data)
		}
	}

	// Inside the activation delay the right code is refused: not_yet_active.
	expectReply(t, "code before activation", radclient(t, s.radius, "alice", "hunter2"+oathCode(t, key, time.Now())), "Access-Reject")
	if time.Since(confirmed) >= e2eDelay {
		t.Fatalf("the check before activation took %v, longer than the delay; the test machine is too slow", time.Since(confirmed))
	}
	if got := s.metric(t, reason("not_yet_active")); got != 1 {
		t.Errorf("not_yet_active = %v, want 1", got)
	}
	// After it, a code of a later step than the confirming one is accepted
	// (the confirming step itself is used).
	time.Sleep(time.Until(confirmed.Add(e2eDelay)) + 200*time.Millisecond)
	next := oathCode(t, key, time.Unix((confirmStep+1)*e2ePeriod, 0))
	expectReply(t, "code after activation", radclient(t, s.radius, "alice", "hunter2"+next), "Access-Accept")

	for ev, want := range map[string]float64{"page_viewed": 1, "confirmed": 1, "mail_sent": 1, "bad_code": 0, "voided": 0} {
		if got := s.metric(t, `radotp_enrollments_total{event="`+ev+`"}`); got != want {
			t.Errorf("enrollments_total{%s} = %v, want %v", ev, got, want)
		}
	}

	// The link is used up.
	b.navigate(t, link)
	b.screenshot(t, filepath.Join(dir, "3-used.png"))
	if txt := b.text(t); !strings.Contains(txt, "This enrollment link was already used") {
		t.Errorf("reopened link:\n%s", txt)
	}

	s.stop(t)
	logs := s.logs()
	for _, bad := range []string{key, groupsOf4(key), strings.TrimPrefix(link, fmt.Sprintf("http://127.0.0.1:%d/enroll/", port)), "hunter2"} {
		if strings.Contains(logs, bad) {
			t.Errorf("server log contains %q", bad)
		}
	}
	if !strings.Contains(logs, `msg="enrollment: token registered" user=alice`) {
		t.Errorf("no log line for the registration:\n%s", logs)
	}
}

func TestEnrollCLI(t *testing.T) {
	dir := t.TempDir()
	mail := smtptest.Start(t)
	cfg := writeEnrollConfig(t, dir, freePort(t), mail.Port)

	// An invitation: the user is made and the link mailed.
	out, errs, code := admin(t, cfg, "", "user", "add", "bob", "--email", "bob@example.org", "--invite")
	if code != 0 || !strings.Contains(out, "user bob added") || !linkURL.MatchString(out) {
		t.Fatalf("user add --invite: exit %d\n%s%s", code, out, errs)
	}
	m := mail.Wait(t, 10*time.Second)
	if !strings.Contains(m.Data, "Subject: Your new account bob: set up your second factor") || !strings.Contains(m.Data, linkURL.FindString(out)) {
		t.Errorf("invitation mail:\n%s", m.Data)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"InviteWithoutEmail", []string{"user", "add", "carol", "--invite"}, 2, "--invite needs --email"},
		{"UnknownUser", []string{"enroll", "link", "nobody"}, 1, `no user "nobody"`},
		{"NoName", []string{"enroll", "link"}, 2, "needs a user NAME"},
		{"BadTTL", []string{"enroll", "link", "bob", "--ttl", "5s"}, 2, "--ttl 5s: must be from 1m to 720h"},
		{"EmailWithoutAddress", []string{"enroll", "link", "dan", "--email"}, 1, "user dan has no e-mail address"},
		{"UnknownSub", []string{"enroll", "code"}, 2, `unknown command "enroll code"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "EmailWithoutAddress" {
				mustAdmin(t, cfg, "", "user", "add", "dan")
			}
			_, errs, code := admin(t, cfg, "", tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tc.code, tc.want)
			}
		})
	}

	// Without [smtp] the link is printed, and --email says it was not mailed.
	cfg2 := writeEnrollConfig(t, t.TempDir(), freePort(t), 0)
	mustAdmin(t, cfg2, "", "user", "add", "erin", "--email", "erin@example.org")
	out, errs, code = admin(t, cfg2, "", "enroll", "link", "erin", "--email")
	if code != 1 || !linkURL.MatchString(out) || !strings.Contains(errs, "not mailed: no [smtp] host is configured") {
		t.Fatalf("--email without SMTP: exit %d\n%s%s", code, out, errs)
	}
	out = mustAdmin(t, cfg2, "", "enroll", "link", "erin", "--ttl", "30m")
	if !linkURL.MatchString(out) {
		t.Fatalf("enroll link: %q", out)
	}
	// Without public_url there is no link.
	bare := writeConfig(t, t.TempDir(), "")
	mustAdmin(t, bare, "", "user", "add", "fay")
	if _, errs, code := admin(t, bare, "", "enroll", "link", "fay"); code != 1 || !strings.Contains(errs, "enrollment.public_url is not set") {
		t.Fatalf("no public_url: exit %d, %s", code, errs)
	}
	mail.None(t, 100*time.Millisecond)
}

func groupsOf4(s string) string {
	var parts []string
	for i := 0; i < len(s); i += 4 {
		parts = append(parts, s[i:min(i+4, len(s))])
	}
	return strings.Join(parts, " ")
}

// oathCode asks oathtool for the code at t, as a phone would show it then.
func oathCode(t *testing.T, key string, at time.Time) string {
	t.Helper()
	out, err := exec.Command("oathtool", "--totp", "-s", strconv.Itoa(e2ePeriod)+"s", "-N", "@"+strconv.FormatInt(at.Unix(), 10), "-b", key).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// browser is headless Chromium driven over the Chrome DevTools Protocol on
// a pipe (--remote-debugging-pipe: commands on fd 3, replies on fd 4, each
// message JSON ended by a NUL byte), with one page attached.
type browser struct {
	cmd     *exec.Cmd
	w       io.WriteCloser
	session string

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpMsg
	events  chan cdpMsg
	stderr  bytes.Buffer
}

type cdpMsg struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct{ Message string }
	SessionID string `json:"sessionId,omitempty"`
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	chromeReads, weWrite, err := os.Pipe() // commands to chromium
	if err != nil {
		t.Fatal(err)
	}
	weRead, chromeWrites, err := os.Pipe() // replies and events from it
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{w: weWrite, waiting: map[int]chan cdpMsg{}, events: make(chan cdpMsg, 256)}
	b.cmd = exec.Command("chromium",
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	b.cmd.ExtraFiles = []*os.File{chromeReads, chromeWrites} // fd 3, fd 4
	b.cmd.Stdout, b.cmd.Stderr = &b.stderr, &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	chromeReads.Close()
	chromeWrites.Close()
	done := make(chan struct{})
	go func() { b.read(weRead); close(done) }()
	t.Cleanup(func() {
		b.w.Close()
		b.cmd.Process.Kill()
		b.cmd.Wait()
		weRead.Close()
		<-done
		if t.Failed() {
			t.Logf("chromium output:\n%s", b.stderr.String())
		}
	})

	var target struct{ TargetID string }
	b.call(t, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct{ SessionID string }
	b.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	b.session = att.SessionID
	b.call(t, b.session, "Page.enable", nil, nil)
	// A phone: 412 CSS pixels wide, tall enough for the whole page.
	b.call(t, b.session, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": 412, "height": 1500, "deviceScaleFactor": 1, "mobile": true}, nil)
	return b
}

func (b *browser) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMsg
		if json.Unmarshal(line[:len(line)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.waiting[m.ID]
			delete(b.waiting, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		select {
		case b.events <- m:
		default: // nobody waits for most events
		}
	}
}

// call sends one command and decodes its result into out (if not nil).
func (b *browser) call(t *testing.T, session, method string, params any, out any) {
	t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMsg, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.w.Write(append(data, 0)); err != nil {
		t.Fatalf("CDP %s: %v", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			t.Fatalf("CDP %s: %s", method, m.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				t.Fatalf("CDP %s: %v", method, err)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("CDP %s: no answer from chromium\n%s", method, b.stderr.String())
	}
}

// drain forgets the events received so far.
func (b *browser) drain() {
	for {
		select {
		case <-b.events:
		default:
			return
		}
	}
}

// waitLoad waits for the page's load event (images included).
func (b *browser) waitLoad(t *testing.T) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-b.events:
			if m.Method == "Page.loadEventFired" && m.SessionID == b.session {
				return
			}
		case <-deadline:
			t.Fatal("chromium: page did not load")
		}
	}
}

func (b *browser) navigate(t *testing.T, u string) {
	t.Helper()
	b.drain()
	var r struct{ ErrorText string }
	b.call(t, b.session, "Page.navigate", map[string]any{"url": u}, &r)
	if r.ErrorText != "" {
		t.Fatalf("navigate %s: %s", u, r.ErrorText)
	}
	b.waitLoad(t)
}

// screenshot saves a PNG of the page to file, checks that it is not blank
// and returns file.
func (b *browser) screenshot(t *testing.T, file string) string {
	t.Helper()
	var r struct{ Data string }
	b.call(t, b.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &r)
	data, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s: %v", file, err)
	}
	if dark, colours := inked(img); dark < 0.005 || colours < 3 {
		t.Fatalf("screenshot %s looks blank: %.4f of pixels dark, %d colours", file, dark, colours)
	}
	t.Logf("screenshot: %s", file)
	if keep := os.Getenv("RADOTP_SCREENSHOTS"); keep != "" { // to look at them: RADOTP_SCREENSHOTS=DIR go test ...
		os.WriteFile(filepath.Join(keep, filepath.Base(file)), data, 0o644)
	}
	return file
}

// inked returns the share of dark pixels and the number of distinct colours
// (up to 1000) of img.
func inked(img image.Image) (float64, int) {
	bounds := img.Bounds()
	var dark, total int
	colours := map[uint32]bool{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			total++
			if (r+g+bl)/3 < 0x4000 {
				dark++
			}
			if len(colours) < 1000 {
				colours[r>>8<<16|g>>8<<8|bl>>8] = true
			}
		}
	}
	return float64(dark) / float64(total), len(colours)
}

func (b *browser) rootNode(t *testing.T) int {
	t.Helper()
	var doc struct{ Root struct{ NodeID int } }
	b.call(t, b.session, "DOM.getDocument", map[string]any{"depth": 0}, &doc)
	return doc.Root.NodeID
}

// html is the page's current markup.
func (b *browser) html(t *testing.T) string {
	t.Helper()
	var r struct{ OuterHTML string }
	b.call(t, b.session, "DOM.getOuterHTML", map[string]any{"nodeId": b.rootNode(t)}, &r)
	return r.OuterHTML
}

var tags = regexp.MustCompile(`(?s)<[^>]*>`)

// text is the page's markup without tags, whitespace collapsed, entities
// for ' decoded: roughly what a user reads.
func (b *browser) text(t *testing.T) string {
	t.Helper()
	s := tags.ReplaceAllString(b.html(t), " ")
	s = strings.NewReplacer("&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`).Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// typeInto focuses the element and types text into it as keyboard input.
func (b *browser) typeInto(t *testing.T, selector, text string) {
	t.Helper()
	var q struct{ NodeID int }
	b.call(t, b.session, "DOM.querySelector", map[string]any{"nodeId": b.rootNode(t), "selector": selector}, &q)
	if q.NodeID == 0 {
		t.Fatalf("no %s on the page", selector)
	}
	b.call(t, b.session, "DOM.focus", map[string]any{"nodeId": q.NodeID}, nil)
	b.call(t, b.session, "Input.insertText", map[string]any{"text": text}, nil)
}

// pressEnterAndWait presses Enter (submitting the form) and waits for the
// next page to load.
func (b *browser) pressEnterAndWait(t *testing.T) {
	t.Helper()
	b.drain()
	for _, typ := range []string{"keyDown", "keyUp"} {
		p := map[string]any{"type": typ, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
		if typ == "keyDown" {
			p["text"] = "\r"
		}
		b.call(t, b.session, "Input.dispatchKeyEvent", p, nil)
	}
	b.waitLoad(t)
}
