package enrollment

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/radotp/radotp/store"
)

// APIRequest is the body of POST /api/enroll-links.
type APIRequest struct {
	User  string `json:"user"`            // required
	TTL   string `json:"ttl,omitempty"`   // e.g. "1h"; "" = enrollment.link_ttl; at most that
	Email bool   `json:"email,omitempty"` // also mail the link to the user's address
}

// APIResponse is the answer of POST /api/enroll-links (201 Created).
type APIResponse struct {
	User      string    `json:"user"`
	URL       string    `json:"url"` // hand the user straight to it
	ExpiresAt time.Time `json:"expires_at"`
	Mailed    bool      `json:"mailed"`
	MailError string    `json:"mail_error,omitempty"` // why email was asked but not sent
}

// APIError is the body of every error answer: {"error": "..."}.
type APIError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, APIError{Error: msg})
}

// apiCreateLink mints a link for an identity portal that checked the user.
func (s *Service) apiCreateLink(w http.ResponseWriter, r *http.Request) {
	if s.set.APIToken == nil {
		writeJSONError(w, http.StatusNotFound, "the API is off: set enrollment.api_token_file")
		return
	}
	ip := s.clientIP(r)
	if !s.limit(w, r, nil, "") {
		return
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="radotp"`)
		writeJSONError(w, http.StatusUnauthorized, "missing bearer token: send the header \"Authorization: Bearer TOKEN\" with the token of enrollment.api_token_file")
		return
	}
	// Hashing first makes the comparison constant-time in the length too.
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256(s.set.APIToken)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		s.log.Warn("enrollment: API call with a wrong bearer token", "from", ip)
		if ok, wait := s.loginIP.allow("api " + ipKey(ip)); !ok {
			w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
			writeJSONError(w, http.StatusTooManyRequests, "too many wrong tokens; retry later")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="radotp", error="invalid_token"`)
		writeJSONError(w, http.StatusUnauthorized, "wrong bearer token")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json")
		return
	}
	var req APIRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
		return
	}
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, `invalid JSON: `+err.Error()+`; send {"user": "NAME", "ttl": "1h", "email": true} (ttl and email optional)`)
		return
	}
	if req.User == "" {
		writeJSONError(w, http.StatusBadRequest, `"user" is required`)
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		ttl, err = time.ParseDuration(req.TTL)
		if err != nil || ttl < time.Minute || ttl > s.set.LinkTTL {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf(`"ttl" must be a duration from "1m" to %q (enrollment.link_ttl), such as "30m"`, s.set.LinkTTL.String()))
			return
		}
	}
	l, err := s.createLink(r.Context(), req.User, store.LinkAPI, ttl, time.Time{})
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no user %q", req.User))
		return
	case errors.Is(err, ErrNoPublicURL):
		writeJSONError(w, http.StatusInternalServerError, "enrollment.public_url is not set; links cannot be built")
		return
	case err != nil:
		s.log.Error("enrollment: API: create link", "user", req.User, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal error; see the radotp log")
		return
	}
	resp := APIResponse{User: l.User, URL: l.URL, ExpiresAt: l.ExpiresAt.UTC()}
	if req.Email {
		if err := s.MailLink(r.Context(), l); err != nil {
			resp.MailError = err.Error()
		} else {
			resp.Mailed = true
		}
	}
	s.log.Info("enrollment: API link", "user", l.User, "link", l.ID, "from", ip, "mailed", resp.Mailed)
	writeJSON(w, http.StatusCreated, resp)
}
