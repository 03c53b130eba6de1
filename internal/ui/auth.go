package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net"
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
// the same rule as the page's own buttons, and for Redis's INFO (its
// server's version, memory, clients and configuration say more about the
// infrastructure than a reader of job progress needs).
func (s *Server) guardMonitor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case (r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions) &&
			!strings.HasSuffix(r.URL.Path, "/redis_info"):
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

// hostCheck refuses a request whose Host names neither this machine
// (localhost), an IP address, nor one of Config.AllowedHosts. A DNS
// rebinding attack makes a browser send requests to this server under the
// attacker's own host name, so the browser takes them as same-origin and
// lets the attacker's page read the answers; the Host header is the one
// thing that still gives the name away.
func (s *Server) hostCheck(h http.Handler) http.Handler {
	allowed := map[string]bool{"localhost": true}
	for _, a := range s.cfg.AllowedHosts {
		if a = strings.TrimSpace(a); a != "" {
			allowed[strings.ToLower(hostName(a))] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.ToLower(hostName(r.Host))
		if allowed[name] || strings.HasSuffix(name, ".localhost") || net.ParseIP(name) != nil {
			h.ServeHTTP(w, r)
			return
		}
		s.log.WarnContext(r.Context(), "request for a host name this server does not answer to refused",
			slog.String("host", r.Host), slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path))
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("this server does not answer to host name %q; reach it by localhost or its IP address, or start it with -allowed-hosts %s", r.Host, hostName(r.Host)))
	})
}

// hostName is a Host header's name, without its port and IPv6 brackets.
func hostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
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
