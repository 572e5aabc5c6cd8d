// Request Finance OAuth (Auth0-based, OpenID Connect) and API client, built on openid-client v5
// (CommonJS; its HTTP goes through Node's `https` module) and Node's built-in fetch for the API.
//
// The hosts are hard-coded, as in Request Finance's own Express demo: no environment variable
// points the app anywhere else. rfcheck judges it unchanged with [target.intercept] hosts = true.
//
// What it shows: the authorization request with state, nonce and PKCE S256 (RFC 9700 §2.1.1);
// client.callback(), which verifies the ID token (RS256 against the JWKS, iss, aud, exp, iat,
// sub, nonce); reusing the access token until it nearly expires; refresh token rotation
// (RFC 6749 §6) with one shared refresh per login; clean stops when the user must log in again;
// bounded retries on the token endpoint; X-Network on every API call and organization reads.
// It never logs tokens or the client secret: errors are described by name and message only
// (openid-client's RPError carries the ID token in a `jwt` property; never log the whole error).

'use strict'

const { Issuer, custom, generators, errors } = require('openid-client')

const AUTH_URL = 'https://auth.request.finance'
const API_URL = 'https://api.request.finance'
const SCOPES = 'openid profile email offline_access user:read'
const AUDIENCE = 'accounts'
const REFRESH_MARGIN_S = 60 // refresh when less than this much validity remains
const CLOCK_TOLERANCE_S = 30 // for ID token exp/iat/nbf (openid-client v5 defaults to 0)
const MAX_TOKEN_RETRIES = 2 // token endpoint retries after 429/5xx (TOKEN-07)
const MAX_RETRY_SLEEP_MS = 2000

/** The user must log in again: no session, or its refresh token is dead. */
class LoginRequired extends Error {}

/** The API answered 403 insufficient_scope: retrying cannot help, the user must consent again. */
class InsufficientScope extends Error {}

/** The token endpoint kept failing with 429/5xx after the bounded retries. */
class TokenEndpointUnavailable extends Error {}

/** An API call failed for another reason. */
class ApiError extends Error {
  constructor(message, status) {
    super(message)
    this.status = status
  }
}

/** One logged-in user's tokens. Mutated in place, so concurrent requests share it. */
class UserGrant {
  constructor({ accessToken, expiresAt, refreshToken, sub }) {
    Object.assign(this, { accessToken, expiresAt, refreshToken, sub })
    this.refreshing = null // the one in-flight refresh (a promise), shared by every caller
    this.organizations = null // a promise of the user's organization IDs, listed once per login
    this.ended = false
  }
}

class RequestFinance {
  /**
   * @param {object} options  clientId, clientSecret, redirectUri, network; and for the broken
   *   variant: keepFirstRefreshToken (keep the login's refresh token after rotation)
   */
  constructor(options) {
    this.options = options
    this.clientPromise = null // a promise of the openid-client Client, from discovery
  }

  // --- discovery ---------------------------------------------------------------------

  /** The openid-client Client; discovery runs on first use and again if it failed. */
  client() {
    if (!this.clientPromise) {
      this.clientPromise = this._discover().catch((err) => {
        this.clientPromise = null
        throw err
      })
    }
    return this.clientPromise
  }

  async _discover() {
    // GET https://auth.request.finance/.well-known/openid-configuration
    const issuer = await Issuer.discover(AUTH_URL)
    const client = new issuer.Client({
      client_id: this.options.clientId,
      client_secret: this.options.clientSecret,
      redirect_uris: [this.options.redirectUri],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256', // an HS256 or alg=none ID token is refused
    })
    client[custom.clock_tolerance] = CLOCK_TOLERANCE_S
    return client
  }

  // --- login -------------------------------------------------------------------------

  /** The authorization URL and what the callback must check; `consent` adds prompt=consent. */
  async startLogin({ consent = false } = {}) {
    const client = await this.client()
    const pending = {
      state: generators.state(), // login CSRF protection (RFC 6749 §10.12)
      nonce: generators.nonce(), // binds the ID token to this login (OIDC Core 3.1.2.1)
      verifier: generators.codeVerifier(), // PKCE, S256 only (RFC 7636, RFC 9700 §2.1.1)
    }
    const params = {
      response_type: 'code',
      redirect_uri: this.options.redirectUri,
      scope: SCOPES,
      audience: AUDIENCE,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: generators.codeChallenge(pending.verifier),
      code_challenge_method: 'S256',
    }
    if (consent) params.prompt = 'consent' // the API said insufficient_scope (SCOPE-05)
    return { url: client.authorizationUrl(params), pending }
  }

  /**
   * Exchanges the code in `params` (client.callbackParams(req)) once, with the registered
   * redirect URI, checking state, PKCE and the ID token. Throws on any failure.
   */
  async finishLogin(params, pending) {
    const client = await this.client()
    const tokenSet = await this._tokenRequest(() => client.callback(this.options.redirectUri, params, {
      response_type: 'code',
      state: pending.state,
      nonce: pending.nonce,
      code_verifier: pending.verifier,
    }))
    if (!tokenSet.id_token) throw new Error('the token response has no ID token')
    return new UserGrant({ ...accessFields(tokenSet), refreshToken: tokenSet.refresh_token || null,
      sub: tokenSet.claims().sub })
  }

  // --- tokens ------------------------------------------------------------------------

  /** The access token to use now: the stored one until it nearly expires (TOKEN-01/02). */
  async currentToken(grant) {
    if (grant.ended) throw new LoginRequired('session ended')
    if (grant.expiresAt - REFRESH_MARGIN_S <= nowSeconds()) return this.refresh(grant, grant.accessToken)
    return grant.accessToken
  }

  /** Refreshes `stale`; callers that come while a refresh runs share it (TOKEN-06). */
  refresh(grant, stale) {
    if (grant.ended) return Promise.reject(new LoginRequired('session ended'))
    if (grant.accessToken !== stale) return Promise.resolve(grant.accessToken) // already refreshed
    if (!grant.refreshing) {
      grant.refreshing = this._refresh(grant).finally(() => { grant.refreshing = null })
    }
    return grant.refreshing
  }

  async _refresh(grant) {
    if (!grant.refreshToken) return this._end(grant, 'no refresh token')
    const client = await this.client()
    console.log('[rf] refreshing the access token')
    let tokenSet
    try {
      // client.refresh() also verifies a refreshed ID token (signature, iss, aud, exp)
      tokenSet = await this._tokenRequest(() => client.refresh(grant.refreshToken))
    } catch (err) {
      if (err instanceof TokenEndpointUnavailable) throw err // nothing was refreshed: try later
      if (err instanceof errors.OPError && err.error === 'invalid_grant') {
        // Revoked or expired: never retry with it (RFC 6749 §5.2, TOKEN-04).
        return this._end(grant, 'refresh token rejected (invalid_grant)')
      }
      // Any other failure (e.g. a refreshed ID token openid-client refused): the provider may
      // have rotated the refresh token already, so the stored one is dead.
      return this._end(grant, `refresh failed: ${describe(err)}`)
    }
    if (tokenSet.id_token && tokenSet.claims().sub !== grant.sub) { // OIDC Core 12.2 (OIDC-10)
      return this._end(grant, 'the refreshed ID token names another user')
    }
    Object.assign(grant, accessFields(tokenSet))
    if (this.options.keepFirstRefreshToken) {
      // BROKEN variant only: keeps the login's refresh token, as Request Finance's public demo
      // does (`refreshToken ??= tokenSet.refresh_token`); the next refresh reuses a rotated one.
      grant.refreshToken = grant.refreshToken || tokenSet.refresh_token
    } else if (tokenSet.refresh_token) {
      // Rotation: always keep the newest refresh token, at once (RFC 6749 §6; TOKEN-03).
      grant.refreshToken = tokenSet.refresh_token
    }
    return grant.accessToken
  }

  _end(grant, reason) {
    grant.ended = true
    grant.accessToken = grant.refreshToken = null
    console.log(`[rf] the user must log in again: ${reason}`)
    throw new LoginRequired(reason)
  }

  /** Runs a token endpoint request, retrying 429/5xx at most twice, honouring Retry-After. */
  async _tokenRequest(send) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await send()
      } catch (err) {
        const response = err instanceof errors.OPError ? err.response : undefined
        const status = response ? response.statusCode : 0
        if (status !== 429 && status < 500) throw err
        if (attempt >= MAX_TOKEN_RETRIES) {
          throw new TokenEndpointUnavailable(`token endpoint answered HTTP ${status}`)
        }
        const delay = Math.min(retryAfterMs(response.headers['retry-after'], 500 * 2 ** attempt), MAX_RETRY_SLEEP_MS)
        console.log(`[rf] token endpoint answered ${status}; retrying in ${delay} ms`)
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
  }

  // --- API ---------------------------------------------------------------------------

  /** The user's organization IDs, listed once per login (OAuth + user:read only). */
  organizations(grant) {
    if (!grant.organizations) {
      grant.organizations = this.apiGet(grant, '/users/organizations')
        .then((orgs) => orgs.map((org) => String(org.id)))
        .catch((err) => {
          grant.organizations = null
          throw err
        })
    }
    return grant.organizations
  }

  /** GET an API path as the user; `organization` (a listed ID) reads that organization's data. */
  async apiGet(grant, path, organization) {
    let token = await this.currentToken(grant)
    let answer = await this._send(token, path, organization)
    if (answer.status === 401) { // invalid_token (expired, revoked): refresh once, retry once
      console.log(`[rf] GET ${path}: access token rejected; refreshing once`)
      token = await this.refresh(grant, token)
      answer = await this._send(token, path, organization)
      if (answer.status === 401) return this._end(grant, 'a fresh access token was rejected too')
    }
    if (answer.status === 403 && answer.bearerError === 'insufficient_scope') {
      throw new InsufficientScope(`insufficient scope for ${path}`) // no retry (SCOPE-05)
    }
    if (!answer.response.ok) throw new ApiError(`GET ${path} failed with HTTP ${answer.status}`, answer.status)
    return answer.response.json()
  }

  async _send(token, path, organization) {
    const headers = {
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      'x-network': this.options.network, // exactly "test" or "live", on every call
    }
    if (organization !== undefined) headers['x-organization'] = organization
    const response = await fetch(API_URL + path, { headers })
    if (!response.ok) await response.arrayBuffer() // read the error body: the connection is reused
    const bearerError = bearerErrorOf(response.headers.get('www-authenticate'))
    return { response, status: response.status, bearerError }
  }
}

function accessFields(tokenSet) {
  if (String(tokenSet.token_type).toLowerCase() !== 'bearer' || !tokenSet.access_token) {
    throw new Error('unexpected token response: no Bearer access token')
  }
  // openid-client v5 turns expires_in into expires_at (seconds since the epoch, by Date.now())
  const expiresAt = tokenSet.expires_at || nowSeconds() + 3600
  return { accessToken: tokenSet.access_token, expiresAt }
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000)
}

/** `error` of a Bearer WWW-Authenticate challenge (RFC 6750 §3), or undefined. */
function bearerErrorOf(header) {
  if (!header || !/^\s*bearer\b/i.test(header)) return undefined
  const match = /\berror\s*=\s*(?:"([^"]*)"|([^\s,]+))/i.exec(header)
  return match ? match[1] || match[2] : undefined
}

function retryAfterMs(value, fallbackMs) {
  const seconds = Number(value) // an HTTP date falls back
  return value !== undefined && value !== '' && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : fallbackMs
}

/** An error in words, without tokens: name, message and the OAuth error fields only. */
function describe(err) {
  const oauthError = err && err.error && !String(err.message).includes(err.error) ? ` (${err.error})` : ''
  return `${err && err.name}: ${err && err.message}${oauthError}`
}

module.exports = {
  RequestFinance, UserGrant, LoginRequired, InsufficientScope, TokenEndpointUnavailable, ApiError,
  describe, SCOPES, AUDIENCE, AUTH_URL, API_URL,
}
