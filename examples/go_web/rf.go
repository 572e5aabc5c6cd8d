// Request Finance OAuth (Auth0-based, OpenID Connect) and API client, on golang.org/x/oauth2 and
// github.com/coreos/go-oidc (the versions Debian 12 ships: x/oauth2 0.3.0, go-oidc 2.1.0).
//
// The hosts are hard-coded: https://auth.request.finance/ (the issuer, with Auth0's trailing
// slash) and https://api.request.finance. Every HTTP request goes through net/http's default
// transport, which honours HTTPS_PROXY and trusts SSL_CERT_FILE when it is set.
//
// What it shows: the authorization request with state, nonce and PKCE S256 (RFC 9700 §2.1.1);
// the ID token verified by go-oidc (RS256 against the JWKS, iss, aud, exp) plus nonce, sub and iat;
// one oauth2.TokenSource per login (oauth2.ReuseTokenSource), which reuses the access token until
// it expires and keeps the rotated refresh token (RFC 6749 §6); one refresh and one retry after a
// 401 invalid_token, shared by concurrent requests; a clean stop when the refresh token is dead;
// bounded retries on 429/5xx from the token endpoint; X-Network on every API call.
// It never logs tokens or the client secret: token endpoint errors are logged by status and
// OAuth error code only (oauth2.RetrieveError's text holds the whole response body).
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	oidc "github.com/coreos/go-oidc"
	"golang.org/x/oauth2"
)

const (
	issuerURL = "https://auth.request.finance/" // the discovery document's issuer, byte for byte
	apiURL    = "https://api.request.finance"
	audience  = "accounts"

	maxTokenRetries = 2               // retries after 429/5xx from the token endpoint (TOKEN-07)
	maxRetrySleep   = 2 * time.Second // longest Retry-After honoured within one request
	httpTimeout     = 8 * time.Second
)

var scopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess, "user:read"}

var (
	// errLoginRequired: no usable grant (refresh token rejected, session ended): log in again.
	errLoginRequired = errors.New("the user must log in again")
	// errInsufficientScope: the API answered 403 insufficient_scope; retrying cannot help.
	errInsufficientScope = errors.New("insufficient scope")
	// errUnavailable: Request Finance could not be reached or kept answering 429/5xx.
	errUnavailable = errors.New("Request Finance is unavailable")
)

// apiError is any other unsuccessful API answer.
type apiError struct {
	path   string
	status int
}

func (e *apiError) Error() string { return fmt.Sprintf("GET %s answered HTTP %d", e.path, e.status) }

// settings come from the environment (see main.go).
type settings struct {
	clientID, clientSecret, redirectURI, network string
}

// requestFinance holds what every login shares: discovery, the verifier and the OAuth config.
type requestFinance struct {
	settings settings
	ctx      context.Context // long-lived: go-oidc's key set and every token source keep it
	http     *http.Client

	// refreshOn401: one refresh and one retry when the API answers 401 (RF_REFRESH_ON_401=off leaves
	// renewal to x/oauth2 alone, which refreshes by the app's own clock 10 s before expiry, and sends
	// the user to log in again on a 401)
	refreshOn401 bool

	mu       sync.Mutex // guards provider, verifier, oauth
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
}

func newRequestFinance(s settings) *requestFinance {
	client := &http.Client{Timeout: httpTimeout} // nil Transport: http.DefaultTransport (HTTPS_PROXY)
	return &requestFinance{settings: s, http: client, ctx: oidc.ClientContext(context.Background(), client),
		refreshOn401: os.Getenv("RF_REFRESH_ON_401") != "off"}
}

// discover runs OIDC discovery on first use, and again after a failure (never at start-up, so the
// app starts and answers even while the authorization server is unreachable).
func (rf *requestFinance) discover() (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.provider == nil {
		provider, err := oidc.NewProvider(rf.ctx, issuerURL)
		if err != nil {
			log.Printf("[rf] discovery failed: %v", err)
			return nil, nil, errUnavailable
		}
		endpoint := provider.Endpoint()
		// client_secret_basic, stated: x/oauth2's auto-detection would send every failed token
		// request a second time with the secret in the body (twice the refreshes with a dead token).
		endpoint.AuthStyle = oauth2.AuthStyleInHeader
		rf.provider = provider
		rf.verifier = provider.Verifier(&oidc.Config{ClientID: rf.settings.clientID}) // RS256 only
		rf.oauth = &oauth2.Config{
			ClientID:     rf.settings.clientID,
			ClientSecret: rf.settings.clientSecret,
			RedirectURL:  rf.settings.redirectURI,
			Endpoint:     endpoint,
			Scopes:       scopes,
		}
	}
	return rf.oauth, rf.verifier, nil
}

// --- login -------------------------------------------------------------------------------

// pendingLogin is what the callback must check, kept server-side in the browser's session.
type pendingLogin struct {
	state, nonce, verifier string
}

// startLogin returns the authorization URL; consent adds prompt=consent (after insufficient_scope).
func (rf *requestFinance) startLogin(consent bool) (string, *pendingLogin, error) {
	conf, _, err := rf.discover()
	if err != nil {
		return "", nil, err
	}
	p := &pendingLogin{state: randomString(32), nonce: randomString(32), verifier: randomString(32)}
	opts := []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("audience", audience),
		oidc.Nonce(p.nonce), // binds the ID token to this login (OIDC Core 3.1.2.1)
		// PKCE S256 (RFC 7636). x/oauth2 0.3.0 predates GenerateVerifier/S256ChallengeOption.
		oauth2.SetAuthURLParam("code_challenge", s256(p.verifier)),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
	}
	if consent {
		opts = append(opts, oauth2.ApprovalForce) // prompt=consent
	}
	return conf.AuthCodeURL(p.state, opts...), p, nil
}

// grant is one logged-in user's tokens. Its mutex makes concurrent requests of one session share
// one refresh.
type grant struct {
	mu     sync.Mutex
	source oauth2.TokenSource // oauth2.ReuseTokenSource over the config's refreshing source
	token  *oauth2.Token      // the newest token the source returned (with the newest refresh token)
	issuer string             // of the login's ID token, for OIDC Core 12.2
	sub    string
	ended  bool
}

// finishLogin exchanges the code once (with the PKCE verifier and the registered redirect URI) and
// verifies the ID token. Any error refuses the login; errUnavailable means "try again later".
func (rf *requestFinance) finishLogin(code string, p *pendingLogin) (*grant, error) {
	conf, verifier, err := rf.discover()
	if err != nil {
		return nil, err
	}
	token, err := rf.tokenRequest("code exchange", func() (*oauth2.Token, error) {
		return conf.Exchange(rf.ctx, code, oauth2.SetAuthURLParam("code_verifier", p.verifier))
	})
	if err != nil {
		return nil, err
	}
	rawIDToken, _ := token.Extra("id_token").(string)
	if rawIDToken == "" {
		return nil, errors.New("the token response has no ID token")
	}
	idToken, err := verifier.Verify(rf.ctx, rawIDToken) // signature (JWKS), alg RS256, iss, aud, exp
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(p.nonce)) != 1 {
		return nil, errors.New("the ID token's nonce is not this login's")
	}
	if idToken.Subject == "" || idToken.IssuedAt.IsZero() { // required claims go-oidc does not check
		return nil, errors.New("the ID token has no sub or no iat")
	}
	if token.Type() != "Bearer" {
		return nil, errors.New("the token response has no Bearer access token")
	}
	return &grant{
		source: oauth2.ReuseTokenSource(token, conf.TokenSource(rf.ctx, token)),
		token:  token, issuer: idToken.Issuer, sub: idToken.Subject,
	}, nil
}

// --- tokens ------------------------------------------------------------------------------

// accessToken is the token to use now: the stored one until x/oauth2 finds it expired (by its own
// clock, 10 s early), then a refreshed one.
func (rf *requestFinance) accessToken(g *grant) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return rf.tokenLocked(g)
}

// refreshAfter401 refreshes once after the API refused `stale`; when another request has already
// replaced it, that newer token is used (concurrent requests share one refresh, TOKEN-06).
func (rf *requestFinance) refreshAfter401(g *grant, stale string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		return "", errLoginRequired
	}
	if g.token.AccessToken != stale {
		return g.token.AccessToken, nil
	}
	conf, _, err := rf.discover()
	if err != nil {
		return "", err
	}
	// x/oauth2 has no "refresh now": a source whose current token is marked expired refreshes on
	// the next Token() call, with the newest refresh token.
	expired := *g.token
	expired.Expiry = time.Now().Add(-time.Minute)
	g.source = oauth2.ReuseTokenSource(&expired, conf.TokenSource(rf.ctx, g.token))
	return rf.tokenLocked(g)
}

func (rf *requestFinance) tokenLocked(g *grant) (string, error) {
	if g.ended {
		return "", errLoginRequired
	}
	previous := g.token
	token, err := rf.tokenRequest("refresh", g.source.Token)
	if err != nil {
		if errors.Is(err, errUnavailable) {
			return "", err // nothing was refreshed: the refresh token is still good, try later
		}
		// invalid_grant (revoked, expired, reused) or another refusal: never retry with it (TOKEN-04)
		return "", rf.end(g, fmt.Sprintf("refresh refused: %v", err))
	}
	if token.AccessToken != previous.AccessToken {
		if err := rf.checkRefreshedIdentity(g, token); err != nil {
			return "", rf.end(g, err.Error())
		}
		log.Printf("[rf] access token refreshed")
	}
	g.token = token // the newest token, and with it the newest refresh token (TOKEN-03)
	return token.AccessToken, nil
}

// checkRefreshedIdentity: a refreshed ID token must be valid and name the same user (OIDC Core 12.2).
func (rf *requestFinance) checkRefreshedIdentity(g *grant, token *oauth2.Token) error {
	rawIDToken, _ := token.Extra("id_token").(string)
	if rawIDToken == "" {
		return nil
	}
	_, verifier, err := rf.discover()
	if err != nil {
		return err
	}
	idToken, err := verifier.Verify(rf.ctx, rawIDToken)
	if err != nil {
		return fmt.Errorf("the refreshed ID token is invalid: %v", err)
	}
	if idToken.Issuer != g.issuer || idToken.Subject != g.sub {
		return errors.New("the refreshed ID token names another user")
	}
	return nil
}

func (rf *requestFinance) end(g *grant, reason string) error {
	g.ended = true
	g.source, g.token = nil, &oauth2.Token{}
	log.Printf("[rf] the user must log in again: %s", reason)
	return errLoginRequired
}

// tokenRequest runs one token endpoint request, retrying 429/5xx and network errors at most twice,
// honouring Retry-After. Errors: errUnavailable (wrapped) when it kept failing, else a tokenError.
func (rf *requestFinance) tokenRequest(what string, send func() (*oauth2.Token, error)) (*oauth2.Token, error) {
	for attempt := 0; ; attempt++ {
		token, err := send()
		if err == nil {
			return token, nil
		}
		var retrieve *oauth2.RetrieveError
		status, retryAfter := 0, ""
		if errors.As(err, &retrieve) {
			status, retryAfter = retrieve.Response.StatusCode, retrieve.Response.Header.Get("Retry-After")
			if status != http.StatusTooManyRequests && status < 500 {
				return nil, &tokenError{what: what, status: status, code: oauthErrorCode(retrieve.Body)}
			}
		} else if !isNetworkError(err) {
			return nil, fmt.Errorf("%s failed: %v", what, err) // e.g. a malformed token response
		}
		if attempt >= maxTokenRetries {
			log.Printf("[rf] %s: token endpoint unavailable (%s) after %d attempts", what, describeStatus(status, err), attempt+1)
			return nil, fmt.Errorf("%s: %w", what, errUnavailable)
		}
		delay := retryDelay(retryAfter, time.Duration(500<<attempt)*time.Millisecond)
		log.Printf("[rf] %s: token endpoint answered %s; retrying in %v", what, describeStatus(status, err), delay)
		time.Sleep(delay)
	}
}

// tokenError is a refusal by the token endpoint, described without its body.
type tokenError struct {
	what   string
	status int
	code   string
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("%s refused: HTTP %d %s", e.what, e.status, e.code)
}

func oauthErrorCode(body []byte) string {
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Error == "" {
		return "(no OAuth error code)"
	}
	return answer.Error
}

func isNetworkError(err error) bool {
	var netErr interface{ Timeout() bool } // *url.Error, net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF)
}

func describeStatus(status int, err error) string {
	if status != 0 {
		return "HTTP " + strconv.Itoa(status)
	}
	return fmt.Sprintf("no answer (%T)", errors.Unwrap(err))
}

func retryDelay(header string, fallback time.Duration) time.Duration {
	delay := fallback
	if seconds, err := strconv.Atoi(strings.TrimSpace(header)); err == nil && seconds >= 0 {
		delay = time.Duration(seconds) * time.Second
	}
	if delay > maxRetrySleep {
		delay = maxRetrySleep
	}
	return delay
}

// --- API ---------------------------------------------------------------------------------

// apiGet GETs an API path as the user; organization (a listed ID, or "") reads that org's data.
// A 401 leads to one refresh and one retry; 403 insufficient_scope is never retried (SCOPE-05).
func (rf *requestFinance) apiGet(g *grant, path, organization string) ([]byte, error) {
	token, err := rf.accessToken(g)
	if err != nil {
		return nil, err
	}
	status, body, challenge, err := rf.send(token, path, organization)
	if err != nil {
		return nil, err
	}
	if status == http.StatusUnauthorized && !rf.refreshOn401 { // stop cleanly: the user connects again
		g.mu.Lock()
		defer g.mu.Unlock()
		return nil, rf.end(g, "the access token was rejected ("+bearerError(challenge)+")")
	}
	if status == http.StatusUnauthorized { // invalid_token: expired (by the provider's clock) or revoked
		log.Printf("[rf] GET %s: access token rejected (%s); refreshing once", path, bearerError(challenge))
		if token, err = rf.refreshAfter401(g, token); err != nil {
			return nil, err
		}
		if status, body, challenge, err = rf.send(token, path, organization); err != nil {
			return nil, err
		}
		if status == http.StatusUnauthorized {
			g.mu.Lock()
			defer g.mu.Unlock()
			return nil, rf.end(g, "a fresh access token was rejected too")
		}
	}
	if status == http.StatusForbidden && bearerError(challenge) == "insufficient_scope" {
		return nil, errInsufficientScope
	}
	if status < 200 || status > 299 {
		return nil, &apiError{path: path, status: status}
	}
	return body, nil
}

func (rf *requestFinance) send(token, path, organization string) (int, []byte, string, error) {
	req, err := http.NewRequest(http.MethodGet, apiURL+path, nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Network", rf.settings.network) // exactly "test" or "live", on every call
	if organization != "" {
		req.Header.Set("X-Organization", organization)
	}
	resp, err := rf.http.Do(req)
	if err != nil {
		log.Printf("[rf] GET %s: no answer (%T)", path, errors.Unwrap(err))
		return 0, nil, "", errUnavailable
	}
	defer resp.Body.Close()
	body, err := ioutil.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil, "", errUnavailable
	}
	return resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"), nil
}

var bearerErrorPattern = regexp.MustCompile(`(?i)\berror\s*=\s*(?:"([^"]*)"|([^\s,]+))`)

// bearerError is the error of a Bearer WWW-Authenticate challenge (RFC 6750 §3), or "".
func bearerError(challenge string) string {
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(challenge)), "bearer") {
		return ""
	}
	match := bearerErrorPattern.FindStringSubmatch(challenge)
	if match == nil {
		return ""
	}
	return match[1] + match[2]
}

// organizationIDs lists the user's organizations (OAuth + user:read only): their IDs, in order.
func (rf *requestFinance) organizationIDs(g *grant) ([]string, error) {
	body, err := rf.apiGet(g, "/users/organizations", "")
	if err != nil {
		return nil, err
	}
	var orgs []struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(body, &orgs); err != nil {
		return nil, fmt.Errorf("GET /users/organizations: unexpected answer: %v", err)
	}
	ids := make([]string, 0, len(orgs))
	for _, org := range orgs {
		var id string
		if json.Unmarshal(org.ID, &id) != nil {
			id = string(org.ID) // a numeric ID, as written
		}
		if id != "" && id != "null" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// --- helpers -----------------------------------------------------------------------------

// randomString is n random bytes, base64url without padding (states, nonces, PKCE verifiers,
// session IDs).
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// s256 is the PKCE S256 code challenge of a verifier (RFC 7636 §4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
