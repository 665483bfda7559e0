package enrollment

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
)

//go:embed templates/*.html
var templateFiles embed.FS

var templates = template.Must(template.New("").ParseFS(templateFiles, "templates/*.html"))

// page is what the templates show. Only the fields of the page's kind are set.
type page struct {
	Title   string
	Base    string // path prefix of the site (from the public URL), "" at the root
	Support string

	// "message": a heading and a sentence or two.
	Text   string
	Action string // optional link below the text
	Href   string

	// "enroll": the QR code, the key and the code form.
	User     string
	Issuer   string
	Key      string // base32, grouped in fours
	QR       string // path of the QR image
	Digits   int
	Algo     string // shown only when not SHA1
	Period   int    // shown only when not 30
	Expires  string
	Error    string // a wrong or malformed code
	Replaces bool   // the user has a token that this one replaces

	// "done"
	ActiveAt  string
	ActiveIn  string
	ActiveNow bool
	Mailed    bool
	MailNote  string

	// "login"
	LoginUser string
}

// render writes a page with its status. A template that fails leaves a
// plain 500 (and is a bug: every page is rendered in the tests).
func (s *Service) render(w http.ResponseWriter, status int, name string, p *page) {
	p.Support = s.set.SupportContact
	p.Base = s.base()
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, p); err != nil {
		s.log.Error("enrollment: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// base is the path of the public URL ("" or "/prefix"), for links in pages.
func (s *Service) base() string {
	u, err := url.Parse(s.set.PublicURL)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
}

func (s *Service) home(w http.ResponseWriter, r *http.Request) {
	p := &page{
		Title: "Two-factor enrollment",
		Text:  "To set up your second factor, open the link you got by e-mail or from " + s.set.SupportContact + ".",
	}
	if s.set.SelfService {
		p.Text = "To set up your second factor, open the link you got, or sign in with your user name and password."
		p.Action, p.Href = "Sign in", s.base()+"/login"
	}
	s.render(w, http.StatusOK, "message", p)
}

func (s *Service) notFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusNotFound, "message", &page{Title: "Page not found", Text: "There is no such page here."})
}

func (s *Service) crossOrigin(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("enrollment: cross-origin POST refused", "path", safePath(r), "from", s.clientIP(r),
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	if len(r.URL.Path) > 5 && r.URL.Path[:5] == "/api/" {
		writeJSONError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	s.render(w, http.StatusForbidden, "message", &page{
		Title: "Request refused",
		Text:  "This form was sent from another web site, so it was refused. Open the enrollment page again and use the form there.",
	})
}

// safePath is the request path with a link token cut out, for logs.
func safePath(r *http.Request) string {
	if tok := r.PathValue("token"); tok != "" {
		return "/enroll/…"
	}
	if len(r.URL.Path) > 8 && r.URL.Path[:8] == "/enroll/" {
		return "/enroll/…"
	}
	return r.URL.Path
}

func (s *Service) css(w http.ResponseWriter, r *http.Request) {
	b, _ := static.ReadFile("static/style.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(b)
}
