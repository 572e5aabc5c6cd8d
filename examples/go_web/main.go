// go-web: a small Go web app that reads a Request Finance user's invoices (authorization code
// flow), on golang.org/x/oauth2 and github.com/coreos/go-oidc. See README.md.
//
// Settings from the environment: RF_CLIENT_ID, RF_CLIENT_SECRET, RF_REDIRECT_URI, RF_NETWORK
// (exactly "test" or "live"), PORT (default 3000). Request Finance's hosts are hard-coded (rf.go).
//
// Browser sessions are server-side: an in-memory map keyed by a random cookie value. The user's
// tokens never leave the server; the cookie holds only the session ID.
package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync"
	"time"
)

const sessionCookie = "go_web_session"

// session is one browser's server-side state. Its mutex guards the fields; the grant has its own.
type session struct {
	mu            sync.Mutex
	pending       *pendingLogin // the login this browser started, until its callback
	grant         *grant        // the logged-in user's tokens, nil when logged out
	consentNeeded bool          // the API said insufficient_scope: the next login asks prompt=consent
	lastUsed      time.Time
}

type app struct {
	rf       *requestFinance
	mu       sync.Mutex // guards sessions
	sessions map[string]*session
}

func main() {
	log.SetFlags(log.LstdFlags)
	log.SetOutput(os.Stdout)
	s, port, err := loadSettings()
	if err != nil {
		fmt.Fprintf(os.Stderr, "configuration error: %v\n", err)
		os.Exit(2)
	}
	a := &app{rf: newRequestFinance(s), sessions: map[string]*session{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.index)
	mux.HandleFunc("/login", a.login)
	mux.HandleFunc("/callback", a.callback)
	mux.HandleFunc("/invoices", a.invoices)
	server := &http.Server{
		Addr:              "127.0.0.1:" + port,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("[app] listening on %s (network %s)", server.Addr, s.network)
	log.Fatal(server.ListenAndServe())
}

func loadSettings() (settings, string, error) {
	s := settings{
		clientID:     os.Getenv("RF_CLIENT_ID"),
		clientSecret: os.Getenv("RF_CLIENT_SECRET"),
		redirectURI:  os.Getenv("RF_REDIRECT_URI"),
		network:      os.Getenv("RF_NETWORK"),
	}
	for name, value := range map[string]string{"RF_CLIENT_ID": s.clientID, "RF_CLIENT_SECRET": s.clientSecret,
		"RF_REDIRECT_URI": s.redirectURI, "RF_NETWORK": s.network} {
		if value == "" {
			return s, "", fmt.Errorf("missing environment variable %s", name)
		}
	}
	if s.network != "test" && s.network != "live" {
		return s, "", errors.New(`RF_NETWORK must be exactly "test" or "live"`)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	return s, port, nil
}

// --- sessions ----------------------------------------------------------------------------

// session returns this browser's session, creating one (and its cookie) when create is set.
func (a *app) session(w http.ResponseWriter, r *http.Request, create bool) *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cookie, err := r.Cookie(sessionCookie); err == nil {
		if s, ok := a.sessions[cookie.Value]; ok {
			return s
		}
	}
	if !create {
		return nil
	}
	return a.newSessionLocked(w)
}

// renew gives the browser a new session ID holding s's state (at login: session fixation).
func (a *app) renew(w http.ResponseWriter, r *http.Request, s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cookie, err := r.Cookie(sessionCookie); err == nil {
		delete(a.sessions, cookie.Value)
	}
	id := randomString(32)
	a.sessions[id] = s
	setSessionCookie(w, id)
}

func (a *app) newSessionLocked(w http.ResponseWriter) *session {
	id := randomString(32)
	s := &session{}
	a.sessions[id] = s
	setSessionCookie(w, id)
	return s
}

func setSessionCookie(w http.ResponseWriter, id string) {
	// A browser-session cookie; set Secure too when the app is served over https.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode})
}

// --- routes ------------------------------------------------------------------------------

func (a *app) index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	text(w, http.StatusOK, "ok") // readiness
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r, true)
	s.mu.Lock()
	consent := s.consentNeeded
	s.mu.Unlock()
	url, pending, err := a.rf.startLogin(consent)
	if err != nil {
		text(w, http.StatusServiceUnavailable, "Request Finance is unavailable, try again later")
		return
	}
	s.mu.Lock()
	s.pending = pending // one login at a time per browser; its state is used once
	s.mu.Unlock()
	log.Printf("[app] login started (prompt=consent: %v)", consent)
	http.Redirect(w, r, url, http.StatusFound)
}

func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r, false)
	if s == nil {
		text(w, http.StatusBadRequest, "login failed: no login in progress")
		return
	}
	query := r.URL.Query()
	s.mu.Lock()
	pending := s.pending
	// A callback this browser's login did not start (login CSRF, code injection) is refused and
	// leaves the pending login alone (RFC 6749 §10.12).
	if pending == nil || subtle.ConstantTimeCompare([]byte(query.Get("state")), []byte(pending.state)) != 1 {
		s.mu.Unlock()
		log.Printf("[app] login refused: unknown state")
		text(w, http.StatusBadRequest, "login failed: this login was not started here")
		return
	}
	s.pending = nil // each state is used once
	s.mu.Unlock()
	if e := query.Get("error"); e != "" {
		log.Printf("[app] login refused by the authorization server: %s", e)
		text(w, http.StatusBadRequest, "login failed: "+e)
		return
	}
	code := query.Get("code")
	if code == "" {
		text(w, http.StatusBadRequest, "login failed: no code")
		return
	}
	g, err := a.rf.finishLogin(code, pending)
	if err != nil {
		log.Printf("[app] login failed: %v", err)
		if errors.Is(err, errUnavailable) {
			text(w, http.StatusServiceUnavailable, "Request Finance is unavailable, try again later")
		} else {
			text(w, http.StatusBadRequest, "login failed")
		}
		return
	}
	s.mu.Lock()
	s.grant, s.consentNeeded = g, false
	s.mu.Unlock()
	a.renew(w, r, s)
	log.Printf("[app] login completed")
	text(w, http.StatusOK, "logged in")
}

func (a *app) invoices(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r, false)
	var g *grant
	if s != nil {
		s.mu.Lock()
		g = s.grant
		s.mu.Unlock()
	}
	if g == nil {
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	}
	orgs, err := a.rf.organizationIDs(g)
	organization := ""
	if err == nil && len(orgs) > 0 {
		organization = orgs[0]
	}
	var body []byte
	if err == nil {
		body, err = a.rf.apiGet(g, "/invoices", organization)
	}
	if err != nil {
		a.failed(w, r, s, g, err)
		return
	}
	var invoices []json.RawMessage
	count := -1
	if json.Unmarshal(body, &invoices) == nil {
		count = len(invoices)
	}
	answer := map[string]interface{}{"invoices": count, "organization": nil}
	if organization != "" {
		answer["organization"] = organization
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

// failed answers a Request Finance error with a handled page: never a 500.
func (a *app) failed(w http.ResponseWriter, r *http.Request, s *session, g *grant, err error) {
	log.Printf("[app] GET %s failed: %v", r.URL.Path, err)
	switch {
	case errors.Is(err, errLoginRequired): // invalid_grant on refresh: the user connects again
		a.logout(s, g, false)
		http.Redirect(w, r, "/login", http.StatusFound)
	case errors.Is(err, errInsufficientScope): // ask again, with prompt=consent (SCOPE-05)
		a.logout(s, g, true)
		http.Redirect(w, r, "/login", http.StatusFound)
	case errors.Is(err, errUnavailable): // the session (and its refresh token) stays
		text(w, http.StatusServiceUnavailable, "Request Finance is unavailable, try again later")
	default:
		text(w, http.StatusBadGateway, "Request Finance error")
	}
}

func (a *app) logout(s *session, g *grant, consent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grant == g {
		s.grant = nil
	}
	if consent {
		s.consentNeeded = true
	}
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, body)
}
