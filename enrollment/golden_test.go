package enrollment

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden pages in testdata/golden")

// TestGoldenPages renders each page kind with fixed content and compares it
// with testdata/golden/NAME.html (go test -run GoldenPages -update rewrites
// them; review the diff). Open the files in a browser to see the pages.
func TestGoldenPages(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		file, tmpl string
		p          page
	}{
		{"enroll", "enroll", page{Title: "Set up your second factor", User: "alice", Issuer: "ACME VPN",
			Key: "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP", QR: "/enroll/TOKEN/qr.png", Digits: 6,
			Expires: "Thu 5 Mar 2026, 10:00 UTC", Replaces: true}},
		{"enroll-wrong-code", "enroll", page{Title: "Set up your second factor", User: "alice", Issuer: "ACME VPN",
			Key: "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP", QR: "/enroll/TOKEN/qr.png", Digits: 8, Algo: "SHA256", Period: 60,
			Expires: "10:15 UTC", Error: "That code is not right. Check that the entry in your app is ACME VPN:alice and type the code it shows now. 2 attempts left."}},
		{"done", "done", page{Title: "Your second factor is registered", User: "alice", ActiveAt: "10:15 UTC", ActiveIn: "in 15 minutes", Mailed: true}},
		{"done-now", "done", page{Title: "Your second factor is registered", User: "alice", ActiveNow: true, MailNote: "We could not send you the confirmation e-mail."}},
		{"expired", "message", page{Title: "This enrollment link has expired", Text: "It was valid until 10:00 UTC. Sign in to start again, or ask the IT desk for a new link.",
			Action: "Sign in", Href: "/login"}},
		{"login", "login", page{Title: "Sign in to set up your second factor", LoginUser: "alice <b>", Error: loginFailedText}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			w := httptest.NewRecorder()
			e.svc.render(w, 200, tc.tmpl, &tc.p)
			got := w.Body.Bytes()
			name := filepath.Join("testdata", "golden", tc.file+".html")
			if *update {
				if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from the rendered page (run with -update and review the diff):\n%s", name, got)
			}
		})
	}
}
