// The Request Finance side of the app: the user's access token (from express-openid-connect's
// session), its refresh, and the API calls.
//
// The access token is read and refreshed exactly as the SDK documents it:
//
//   let { access_token, isExpired, refresh } = req.oidc.accessToken
//   if (isExpired()) { ({ access_token } = await refresh()) }
//
// with two additions a production app needs on top of the SDK:
//
// - One refresh per refresh token, shared by concurrent requests (TOKEN-06). The SDK's default
//   session lives in an encrypted cookie, so requests that a browser sends at the same time all
//   carry the same refresh token. Request Finance (Auth0) rotates refresh tokens and revokes the
//   whole family when a rotated one is presented again, so a second refresh() with the same
//   cookie would log the user out. The first request refreshes; the others wait for its answer
//   and write the same new tokens into their own session (a few minutes' memory, keyed by a hash
//   of the old refresh token, never by the token itself).
// - Bounded retries when the token endpoint answers 429/5xx, honouring Retry-After (TOKEN-07).
//
// It never logs a token or the client secret: errors are described by name and message only
// (openid-client's RPError carries the ID token in its `jwt` property).

'use strict'

const crypto = require('node:crypto')

const MAX_TOKEN_RETRIES = 2 // token endpoint retries after 429/5xx
const MAX_RETRY_SLEEP_MS = 2000
const SHARED_REFRESH_MS = 5 * 60 * 1000 // how long a refresh's answer serves stale cookies
const API_TIMEOUT_MS = 8000

/** The user must log in again: the refresh token is dead, or a fresh access token was refused. */
class LoginRequired extends Error {}

/** The API answered 403 insufficient_scope: retrying cannot help, the user must consent again. */
class InsufficientScope extends Error {}

/** Request Finance is unavailable (token endpoint or API answering 429/5xx): try again later. */
class Unavailable extends Error {}

/** Any other Request Finance error. */
class UpstreamError extends Error {}

/** Refreshes in flight or just done, by a hash of the refresh token they presented. */
const refreshes = new Map()

/**
 * The user's tokens for one request to the app. The access token is read once per request and
 * reused for each API call of it (TOKEN-01); a 401 leads to at most one refresh and one retry.
 */
class UserTokens {
  constructor(req) {
    this.req = req
    this.token = null // the access token this request uses
    this.refreshed = false // at most one refresh per request
  }

  /** The access token to send: the session's own until it expires, then a refreshed one. */
  async accessToken() {
    if (this.token) return this.token
    if (!this.req.oidc.accessToken) throw new LoginRequired('the session holds no access token')
    // eslint-disable-next-line prefer-const
    let { access_token, isExpired, refresh } = this.req.oidc.accessToken
    if (isExpired()) {
      ({ access_token } = await this.refresh(refresh))
    }
    this.token = access_token
    return access_token
  }

  /** After a 401: a new access token, once per request; `LoginRequired` when that is not possible. */
  async afterRejection(rejected) {
    if (this.refreshed) throw new LoginRequired('a fresh access token was refused too')
    if (this.token !== rejected) return this.token
    const { refresh } = this.req.oidc.accessToken
    const { access_token } = await this.refresh(refresh)
    this.token = access_token
    return access_token
  }

  /** The SDK's refresh(), shared by every request presenting the same refresh token. */
  async refresh(refresh) {
    this.refreshed = true
    const session = this.req.appSession
    const refreshToken = this.req.oidc.refreshToken
    if (!refreshToken) throw new LoginRequired('the session holds no refresh token (no offline_access)')
    const key = crypto.createHash('sha256').update(refreshToken).digest('base64url')
    sweep()
    const shared = refreshes.get(key)
    if (shared) {
      // Another request presented this refresh token already: use its answer, never present the
      // token again (it has been rotated).
      const tokens = await shared.promise
      Object.assign(session, tokens) // the SDK's cookie of this response carries the new tokens too
      return { access_token: tokens.access_token }
    }
    const entry = { promise: null, until: Infinity }
    entry.promise = withRetries(() => refresh()).then(
      (accessToken) => {
        entry.until = Date.now() + SHARED_REFRESH_MS
        return pickTokens(session, accessToken)
      },
      (err) => {
        const failure = classify(err)
        if (failure instanceof Unavailable) refreshes.delete(key) // nothing rotated: a later request retries
        else entry.until = Date.now() + SHARED_REFRESH_MS
        throw failure
      },
    )
    refreshes.set(key, entry)
    const tokens = await entry.promise
    console.log('[rf] access token refreshed')
    return { access_token: tokens.access_token }
  }
}

/** What the SDK's refresh() wrote into the session, for requests that share it. */
function pickTokens(session, accessToken) {
  const { access_token, id_token, refresh_token, token_type, expires_at } = session
  return { access_token: (accessToken && accessToken.access_token) || access_token, id_token, refresh_token,
    token_type, expires_at }
}

function sweep() {
  const now = Date.now()
  for (const [key, entry] of refreshes) if (entry.until < now) refreshes.delete(key)
}

/** A token endpoint failure in the app's terms. */
function classify(err) {
  if (err instanceof Unavailable) return err
  if (isOPError(err) && err.error === 'invalid_grant') {
    // revoked or expired: never retried with it (RFC 6749 §5.2, TOKEN-04)
    return new LoginRequired('refresh token rejected (invalid_grant)')
  }
  if (!isOPError(err) && !isRPError(err)) {
    // no answer (timeout, connection refused): the session and its refresh token stay
    return new Unavailable(`token endpoint unreachable: ${describe(err)}`)
  }
  // Another OAuth error, or a refreshed ID token that openid-client refused (bad signature, another
  // `sub`: OIDC Core 12.2): the provider may have rotated the refresh token already, and its
  // answer is not to be trusted, so the session cannot go on.
  return new LoginRequired(`refresh failed: ${describe(err)}`)
}

// openid-client v4's error classes (the SDK's own copy of it is not this app's dependency)
const isOPError = (err) => Boolean(err) && err.name === 'OPError'
const isRPError = (err) => Boolean(err) && err.name === 'RPError'

/** Runs a token request, retrying 429/5xx at most twice, honouring Retry-After. */
async function withRetries(send) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await send()
    } catch (err) {
      const response = err && err.response
      const status = response && response.statusCode
      if (!isOPError(err) || !status || (status !== 429 && status < 500)) throw err
      if (attempt >= MAX_TOKEN_RETRIES) throw new Unavailable(`token endpoint answered HTTP ${status}`)
      const delay = Math.min(retryAfterMs(response.headers && response.headers['retry-after'], 500 * 2 ** attempt),
        MAX_RETRY_SLEEP_MS)
      console.log(`[rf] token endpoint answered ${status}; retrying in ${delay} ms`)
      await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }
}

/** Request Finance's API as one user: Bearer token, X-Network, optional X-Organization. */
class RequestFinanceApi {
  constructor({ apiUrl, network }) {
    this.apiUrl = apiUrl.replace(/\/+$/, '')
    this.network = network
  }

  /** GET `path`; a 401 leads to one refresh and one retry. Returns the parsed JSON body. */
  async get(tokens, path, organization) {
    let token = await tokens.accessToken()
    let answer = await this._send(token, path, organization)
    if (answer.status === 401) { // invalid_token (expired, revoked): refresh once, retry once
      console.log(`[rf] GET ${path}: access token rejected; refreshing once`)
      token = await tokens.afterRejection(token)
      answer = await this._send(token, path, organization)
      if (answer.status === 401) throw new LoginRequired('a fresh access token was refused too')
    }
    if (answer.status === 403 && answer.bearerError === 'insufficient_scope') {
      throw new InsufficientScope(`insufficient scope for GET ${path}`) // no retry (SCOPE-05)
    }
    if (answer.status === 429 || answer.status >= 500) {
      throw new Unavailable(`GET ${path} answered HTTP ${answer.status}`)
    }
    if (!answer.response.ok) throw new UpstreamError(`GET ${path} answered HTTP ${answer.status}`)
    try {
      return await answer.response.json()
    } catch (err) {
      throw new UpstreamError(`GET ${path}: the answer is not JSON`)
    }
  }

  async _send(token, path, organization) {
    const headers = {
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      'x-network': this.network, // exactly "test" or "live", on every call
    }
    if (organization !== undefined) headers['x-organization'] = organization
    let response
    try {
      response = await fetch(this.apiUrl + path, { headers, signal: AbortSignal.timeout(API_TIMEOUT_MS) })
    } catch (err) {
      throw new Unavailable(`GET ${path}: ${err.name}`)
    }
    if (!response.ok) await response.arrayBuffer().catch(() => {}) // drain: the connection is reused
    return { response, status: response.status, bearerError: bearerErrorOf(response.headers.get('www-authenticate')) }
  }
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

/** An error in words, without tokens: name, message and the OAuth error code only. */
function describe(err) {
  if (!err) return String(err)
  const code = err.error && !String(err.message).includes(err.error) ? ` (${err.error})` : ''
  return `${err.name}: ${err.message}${code}`
}

module.exports = {
  RequestFinanceApi, UserTokens, LoginRequired, InsufficientScope, Unavailable, UpstreamError, describe,
}
