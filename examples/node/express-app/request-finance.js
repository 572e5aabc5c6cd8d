// Request Finance OAuth (Auth0-based, OpenID Connect) and API client, built on openid-client v6.
//
// What it shows: the authorization request with state, nonce and PKCE S256 (RFC 9700 §2.1.1);
// the code exchange with full ID token verification, signature included (OIDC Core 3.1.3.7);
// reusing the access token until it nearly expires, refresh token rotation (RFC 6749 §6), one
// shared refresh for concurrent requests, clean stops when the user must log in again; bounded
// retries on the token endpoint; X-Network on every API call and organization reads.
// It never logs tokens or the client secret.

import * as oidc from 'openid-client'

export const SCOPES = 'openid profile email offline_access user:read'
export const AUDIENCE = 'accounts'
const REFRESH_MARGIN_MS = 60_000 // refresh when less than this much validity remains
const MAX_TOKEN_RETRIES = 2 // token endpoint retries after 429/5xx (TOKEN-07)
const MAX_RETRY_SLEEP_MS = 2_000

/** The user must log in again: no session, or its refresh token is dead. */
export class LoginRequired extends Error {}

/** The API answered 403 insufficient_scope: retrying cannot help, the user must consent again. */
export class InsufficientScope extends Error {}

/** The token endpoint kept failing with 429/5xx after the bounded retries. */
export class TokenEndpointUnavailable extends Error {}

/** An API call failed for another reason. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message)
    this.status = status
  }
}

/** One logged-in user's grant. Mutated in place, so concurrent requests share it. */
export class UserGrant {
  constructor({ accessToken, expiresAt, refreshToken, sub, iss }) {
    Object.assign(this, { accessToken, expiresAt, refreshToken, sub, iss })
    this.refreshing = null // the one in-flight refresh (a promise), shared by every caller
    this.organizations = null // a promise of the user's organization IDs, listed once per login
    this.ended = false
  }
}

export class RequestFinance {
  /**
   * @param {object} options  loadConfig() output, plus for the broken variants:
   *   refreshMarginMs: refresh when less than this much validity remains (default 60 s)
   *   keepRotatedRefreshToken: store the new refresh token after each refresh (default true)
   *   fetch: a fetch implementation for every request (openid-client's customFetch)
   */
  constructor(options) {
    this.options = options
    this.refreshMarginMs = options.refreshMarginMs ?? REFRESH_MARGIN_MS
    this.keepRotatedRefreshToken = options.keepRotatedRefreshToken ?? true
    this.configuration = null // a promise of the discovered openid-client Configuration
  }

  // --- discovery ---------------------------------------------------------------------

  /** openid-client Configuration from discovery; retried on the next call if it failed. */
  config() {
    this.configuration ??= this.#discover().catch((err) => {
      this.configuration = null
      throw err
    })
    return this.configuration
  }

  async #discover() {
    const { issuer, clientId, clientSecret, allowHttp, fetch } = this.options
    const execute = allowHttp ? [oidc.allowInsecureRequests] : [] // RF_ALLOW_HTTP=1 only
    // The discovery document must name `${issuer}/` as its issuer, byte for byte (openid-client
    // compares it with new URL(issuer).href, which adds the trailing slash Auth0 uses).
    const config = await oidc.discovery(new URL(issuer), clientId, undefined,
      oidc.ClientSecretBasic(clientSecret), { execute, ...(fetch && { [oidc.customFetch]: fetch }) })
    // openid-client checks the ID token claims always, and its RS256 signature against the JWKS
    // only with this switched on (OIDC-01..03 for ID tokens from the token endpoint).
    oidc.enableNonRepudiationChecks(config)
    return config
  }

  // --- login -------------------------------------------------------------------------

  /** The authorization URL and what the callback must check; `consent` adds prompt=consent. */
  async startLogin({ consent = false } = {}) {
    const config = await this.config()
    const pending = {
      state: oidc.randomState(), // login CSRF protection (RFC 6749 §10.12)
      nonce: oidc.randomNonce(), // binds the ID token to this login (OIDC Core 3.1.2.1)
      verifier: oidc.randomPKCECodeVerifier(), // PKCE, S256 only (RFC 7636, RFC 9700 §2.1.1)
    }
    const params = {
      response_type: 'code',
      redirect_uri: this.options.redirectUri,
      scope: SCOPES,
      audience: AUDIENCE,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
    }
    if (consent) params.prompt = 'consent' // the API said insufficient_scope (SCOPE-05)
    return { url: oidc.buildAuthorizationUrl(config, params), pending }
  }

  /**
   * Exchanges the code from `callbackUrl` (a URL: the registered redirect URI plus the query
   * received) once, checking state, PKCE, and the ID token (signature, iss, aud, exp, iat, sub,
   * nonce). Throws on any failure; the tokens are trusted only when everything passed.
   */
  async finishLogin(callbackUrl, pending) {
    const config = await this.config()
    const tokens = await this.#tokenRequest(() => oidc.authorizationCodeGrant(config, callbackUrl, {
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      pkceCodeVerifier: pending.verifier,
      idTokenExpected: true,
    }))
    const claims = tokens.claims()
    return new UserGrant({ ...accessFields(tokens), refreshToken: tokens.refresh_token ?? null,
      sub: claims.sub, iss: claims.iss })
  }

  // --- tokens ------------------------------------------------------------------------

  /** The access token to use now: the stored one until it nearly expires (TOKEN-01/02). */
  async currentToken(grant) {
    if (grant.ended) throw new LoginRequired('session ended')
    if (grant.expiresAt - Date.now() < this.refreshMarginMs) return this.refresh(grant, grant.accessToken)
    return grant.accessToken
  }

  /** Refreshes `stale`; callers that come while a refresh runs share it (TOKEN-06). */
  refresh(grant, stale) {
    if (grant.ended) return Promise.reject(new LoginRequired('session ended'))
    if (grant.accessToken !== stale) return Promise.resolve(grant.accessToken) // already refreshed
    grant.refreshing ??= this.#refresh(grant).finally(() => { grant.refreshing = null })
    return grant.refreshing
  }

  async #refresh(grant) {
    if (!grant.refreshToken) return this.#end(grant, 'no refresh token')
    const config = await this.config()
    console.log('[rf] refreshing the access token')
    let tokens
    try {
      tokens = await this.#tokenRequest(() => oidc.refreshTokenGrant(config, grant.refreshToken))
    } catch (err) {
      if (err instanceof TokenEndpointUnavailable) throw err // nothing was refreshed: try later
      if (err instanceof oidc.ResponseBodyError && err.error === 'invalid_grant') {
        // Revoked or expired: never retry with it (RFC 6749 §5.2, TOKEN-04).
        return this.#end(grant, 'refresh token rejected (invalid_grant)')
      }
      // Any other failure, e.g. a refresh response whose ID token openid-client rejected: the
      // provider may have rotated the refresh token already, so the stored one is dead.
      return this.#end(grant, `refresh failed: ${err.name}: ${err.message}`)
    }
    if (tokens.id_token) { // OIDC Core 12.2: same issuer and user as at login (OIDC-10)
      const claims = tokens.claims()
      if (claims.iss !== grant.iss || claims.sub !== grant.sub) {
        return this.#end(grant, 'refreshed ID token names another issuer or user')
      }
    }
    Object.assign(grant, accessFields(tokens))
    // Rotation: always keep the newest refresh token (RFC 6749 §6, RFC 9700 §4.14.2; TOKEN-03).
    if (tokens.refresh_token && this.keepRotatedRefreshToken) grant.refreshToken = tokens.refresh_token
    return grant.accessToken
  }

  #end(grant, reason) {
    grant.ended = true
    grant.accessToken = grant.refreshToken = null
    console.log(`[rf] the user must log in again: ${reason}`)
    throw new LoginRequired(reason)
  }

  /** Runs a token endpoint request, retrying 429/5xx at most twice, honouring Retry-After. */
  async #tokenRequest(send) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await send()
      } catch (err) {
        const response = errorResponse(err)
        const status = response?.status ?? 0
        if (status !== 429 && status < 500) throw err
        if (attempt >= MAX_TOKEN_RETRIES) {
          throw new TokenEndpointUnavailable(`token endpoint answered HTTP ${status}`)
        }
        const delay = Math.min(retryAfterMs(response, 500 * 2 ** attempt), MAX_RETRY_SLEEP_MS)
        console.log(`[rf] token endpoint answered ${status}; retrying in ${delay} ms`)
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
  }

  // --- API ---------------------------------------------------------------------------

  /** The user's organization IDs, listed once per login (needs user:read). */
  organizations(grant) {
    grant.organizations ??= this.apiGet(grant, '/users/organizations')
      .then((orgs) => orgs.map((org) => String(org.id)))
      .catch((err) => {
        grant.organizations = null
        throw err
      })
    return grant.organizations
  }

  /** GET an API path as the user; `organization` reads that organization's data. */
  async apiGet(grant, path, organization) {
    let token = await this.currentToken(grant)
    let answer = await this.#send(token, path, organization)
    if (answer.status === 401) { // invalid_token (expired, revoked): refresh once, retry once
      console.log(`[rf] GET ${path}: access token rejected; refreshing once`)
      token = await this.refresh(grant, token)
      answer = await this.#send(token, path, organization)
      if (answer.status === 401) return this.#end(grant, 'a fresh access token was rejected too')
    }
    if (answer.status === 403 && answer.bearerError === 'insufficient_scope') {
      throw new InsufficientScope(`insufficient scope for ${path}`) // no retry (SCOPE-05)
    }
    if (!answer.response.ok) {
      await answer.response.body?.cancel()
      throw new ApiError(`GET ${path} failed with HTTP ${answer.status}`, answer.status)
    }
    return answer.response.json()
  }

  async #send(token, path, organization) {
    const config = await this.config()
    const headers = new Headers({ accept: 'application/json', 'x-network': this.options.network })
    if (organization !== undefined) headers.set('x-organization', organization) // listed IDs only
    try { // sends Authorization: Bearer <token>; refuses plain HTTP unless RF_ALLOW_HTTP=1
      const response = await oidc.fetchProtectedResource(config, token,
        new URL(this.options.apiUrl + path), 'GET', null, headers)
      return { response, status: response.status }
    } catch (err) {
      if (!(err instanceof oidc.WWWAuthenticateChallengeError)) throw err
      await err.response.body?.cancel()
      const bearer = err.cause.find((challenge) => challenge.scheme === 'bearer')
      return { response: err.response, status: err.status, bearerError: bearer?.parameters.error }
    }
  }
}

function accessFields(tokens) {
  if (String(tokens.token_type).toLowerCase() !== 'bearer' || typeof tokens.expires_in !== 'number') {
    throw new Error('unexpected token response: no Bearer access token with expires_in')
  }
  return { accessToken: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 }
}

/** The HTTP response behind an openid-client error, when there is one. */
function errorResponse(err) {
  // duck-typed: with a custom fetch (undici's), responses are not the global Response class
  const isResponse = (r) => typeof r?.status === 'number' && typeof r?.headers?.get === 'function'
  if (isResponse(err?.response)) return err.response // ResponseBodyError, WWW-Authenticate challenges
  if (isResponse(err?.cause)) return err.cause // "unexpected HTTP response status code"
  return null
}

function retryAfterMs(response, fallbackMs) {
  const seconds = Number(response.headers.get('retry-after')) // an HTTP date falls back
  return response.headers.has('retry-after') && Number.isFinite(seconds) && seconds >= 0
    ? seconds * 1000 : fallbackMs
}
