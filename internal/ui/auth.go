package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net/http"
	"strings"
)

// authorized reports whether r carries the token: "Authorization: Bearer
// TOKEN" (the page) or HTTP Basic with TOKEN as the password (Asynqmon's
// own buttons, whose requests ebb cannot add a header to; the browser
// prompts and then resends the credentials itself). Without a token
// configured every request is authorized.
func (s *Server) authorized(r *http.Request) bool {
	if s.tokenSum == nil {
		return true
	}
	got, ok := bearer(r)
	if !ok {
		_, got, _ = r.BasicAuth()
	}
	if got == "" {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum) == 1
}

// mutating guards the page's POSTs: the token when one is set, and a JSON
// body or a bearer token. An HTML form on another site can send neither (a
// form cannot set Content-Type: application/json nor any header), so even a
// browser without Sec-Fetch-Site cannot be made to pause a job by a page it
// visits. Basic credentials do not count here: a browser that answered
// Asynqmon's challenge attaches them to cross-site requests by itself.
func (s *Server) mutating(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			// Bearer, not Basic: a Basic challenge would make the browser
			// pop its own dialog over the page's prompt.
			w.Header().Set("WWW-Authenticate", `Bearer realm="ebb"`)
			writeError(w, http.StatusUnauthorized, "this server needs its token: send Authorization: Bearer TOKEN (the page asks for it)")
			return
		}
		if !hasBearer(r) && !isJSON(r.Header.Get("Content-Type")) {
			writeError(w, http.StatusUnsupportedMediaType, "send Content-Type: application/json (plain form posts are refused: they can come from another site)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// guardMonitor lets anyone read Asynqmon but requires the token for every
// request that changes something (pause a queue, delete or run tasks),
// the same rule as the page's own buttons.
func (s *Server) guardMonitor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if !s.authorized(r) {
				// Basic here: Asynqmon's page cannot be taught to send a
				// bearer token, but the browser answers a Basic challenge
				// by asking the operator and remembering the answer.
				w.Header().Set("WWW-Authenticate", `Basic realm="ebb ui (any user name, the token as password)", charset="UTF-8"`)
				writeError(w, http.StatusUnauthorized, "this server needs its token for Asynqmon's actions: HTTP Basic, any user name, the token as password")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

func hasBearer(r *http.Request) bool {
	_, ok := bearer(r)
	return ok
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}
