// Express 5 + Passport's passport-openidconnect, in the shape of Passport's own OpenID Connect
// tutorial: GET /login starts the login, GET /oauth2/redirect is the callback (a relative
// callbackURL), express-session keeps the login's state and nonce. What the strategy leaves to the
// app is done here: the ID token's signature (the strategy checks iss, aud, exp and the nonce but
// not the signature), the audience Request Finance needs, the refresh grant and the API calls.
//
// Settings come from the environment only: ISSUER (https://auth.request.finance), CLIENT_ID,
// CLIENT_SECRET, SESSION_SECRET (signs the session cookie), RF_API_URL, RF_NETWORK (test | live),
// PORT. Tokens stay on the server: the session holds only a random grant ID.

import { randomUUID } from 'node:crypto'
import express from 'express'
import session from 'express-session'
import passport from 'passport'
import OpenIDConnectStrategy from 'passport-openidconnect'
import { createRemoteJWKSet, jwtVerify } from 'jose'

const SCOPE = 'profile email offline_access user:read' // the strategy puts openid first
const REFRESH_MARGIN_MS = 60_000
const TOKEN_RETRIES = 2 // after a 429/5xx from the token endpoint, honouring Retry-After

export class LoginRequired extends Error {}
export class InsufficientScope extends Error {}
export class Unavailable extends Error {}

export function loadSettings(env = process.env) {
  const names = ['ISSUER', 'CLIENT_ID', 'CLIENT_SECRET', 'SESSION_SECRET', 'RF_API_URL', 'RF_NETWORK']
  const missing = names.filter((name) => !env[name])
  if (missing.length) throw new Error(`missing environment variable(s) ${missing.join(', ')}`)
  if (!['test', 'live'].includes(env.RF_NETWORK)) throw new Error('RF_NETWORK must be exactly "test" or "live"')
  const base = env.ISSUER.replace(/\/+$/, '')
  return {
    base, issuer: `${base}/`, // Request Finance's discovery names its issuer with the trailing slash
    clientID: env.CLIENT_ID, clientSecret: env.CLIENT_SECRET, sessionSecret: env.SESSION_SECRET,
    apiUrl: env.RF_API_URL.replace(/\/+$/, ''), network: env.RF_NETWORK, port: Number(env.PORT || 3000),
  }
}

/** Request Finance's authorization request needs audience=accounts, which the strategy has no option for. */
class RequestFinanceStrategy extends OpenIDConnectStrategy {
  authorizationParams() {
    return { audience: 'accounts' }
  }
}

/** The tokens of one login, shared by the user's concurrent requests (so they share one refresh). */
class Grant {
  constructor(tokens, sub) {
    Object.assign(this, { sub, refreshing: null })
    this.store(tokens)
  }

  store({ access_token, refresh_token, expires_in }) {
    this.accessToken = access_token
    this.expiresAt = Date.now() + Number(expires_in) * 1000
    if (refresh_token) this.refreshToken = refresh_token // RFC 6749 §6: the rotated one replaces the old
  }
}

export function createApp(settings) {
  const jwks = createRemoteJWKSet(new URL(`${settings.base}/.well-known/jwks.json`))
  const grants = new Map() // grant ID -> Grant
  const tokenUrl = `${settings.base}/oauth/token`

  async function verifyIdToken(idToken, nonce) {
    const { payload } = await jwtVerify(idToken, jwks, {
      issuer: settings.issuer, audience: settings.clientID, algorithms: ['RS256'],
      requiredClaims: ['sub', 'iat'], clockTolerance: 30,
    })
    if (nonce !== undefined && payload.nonce !== nonce) throw new Error('ID token nonce mismatch')
    return payload
  }

  passport.use(new RequestFinanceStrategy({
    issuer: settings.issuer,
    authorizationURL: `${settings.base}/authorize`,
    tokenURL: tokenUrl,
    userInfoURL: `${settings.base}/userinfo`,
    clientID: settings.clientID,
    clientSecret: settings.clientSecret,
    callbackURL: '/oauth2/redirect',
    scope: SCOPE,
    nonce: true,
    skipUserProfile: true,
  }, (issuer, profile, context, idToken, accessToken, refreshToken, params, done) => {
    verifyIdToken(idToken)
      .then((claims) => {
        const id = randomUUID()
        // the oauth package hands the refresh token apart, without it in params
        grants.set(id, new Grant({ ...params, refresh_token: refreshToken }, claims.sub))
        done(null, { grantId: id })
      })
      .catch((err) => done(null, false, { message: `ID token refused: ${err.code || err.name}` }))
  }))
  passport.serializeUser((user, done) => done(null, user))
  passport.deserializeUser((user, done) => done(null, user))

  async function tokenRequest(body) {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(tokenUrl, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...body, client_id: settings.clientID, client_secret: settings.clientSecret }),
      })
      const answer = await response.json().catch(() => ({}))
      if (response.ok) return answer
      if (response.status !== 429 && response.status < 500) throw new LoginRequired(answer.error || 'refused')
      if (attempt >= TOKEN_RETRIES) throw new Unavailable(`token endpoint answered ${response.status}`)
      const wait = Math.min(Number(response.headers.get('retry-after')) || 1, 2)
      await new Promise((resolve) => setTimeout(resolve, wait * 1000))
    }
  }

  /** One refresh per grant at a time; requests that arrive meanwhile wait for its result. */
  function refresh(grant, used) {
    if (grant.accessToken !== used) return Promise.resolve() // another request refreshed already
    grant.refreshing ??= (async () => {
      try {
        const tokens = await tokenRequest({ grant_type: 'refresh_token', refresh_token: grant.refreshToken })
        if (tokens.id_token && (await verifyIdToken(tokens.id_token)).sub !== grant.sub) {
          throw new LoginRequired('refreshed ID token names another user') // OIDC Core 12.2
        }
        grant.store(tokens)
      } finally {
        grant.refreshing = null
      }
    })()
    return grant.refreshing
  }

  async function apiGet(grant, path, organization) {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (grant.expiresAt - Date.now() < REFRESH_MARGIN_MS) await refresh(grant, grant.accessToken)
      const token = grant.accessToken
      const headers = { authorization: `Bearer ${token}`, 'x-network': settings.network }
      if (organization) headers['x-organization'] = organization
      const response = await fetch(settings.apiUrl + path, { headers })
      if (response.ok) return response.json()
      const challenge = response.headers.get('www-authenticate') || ''
      if (response.status === 403 && challenge.includes('insufficient_scope')) throw new InsufficientScope()
      if (response.status === 429 || response.status >= 500) throw new Unavailable(`API answered ${response.status}`)
      if (response.status !== 401) throw new Error(`API answered ${response.status} to GET ${path}`)
      await refresh(grant, token) // revoked before its expiry: one refresh, one retry
    }
    throw new LoginRequired('the API refused a fresh access token')
  }

  const app = express()
  app.disable('x-powered-by')
  app.use(session({
    secret: settings.sessionSecret, resave: false, saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax' },
  }))
  app.use(passport.authenticate('session'))

  app.get('/', (req, res) => res.type('text').send('ok'))

  app.get('/login', (req, res, next) => {
    const prompt = req.session.consentNeeded ? 'consent' : undefined
    passport.authenticate('openidconnect', { prompt })(req, res, next)
  })

  app.get('/oauth2/redirect', (req, res, next) => {
    passport.authenticate('openidconnect', (err, user, info) => {
      if (err || !user) {
        console.log(`[app] login refused: ${err ? err.message : info?.message}`)
        return res.status(400).type('text').send('login failed')
      }
      req.logIn(user, (error) => (error ? next(error) : res.redirect('/')))
    })(req, res, next)
  })

  app.get('/invoices', async (req, res) => {
    const grant = req.user && grants.get(req.user.grantId)
    if (!grant) return res.redirect('/login')
    try {
      const organizations = await apiGet(grant, '/users/organizations')
      const organization = organizations.length ? String(organizations[0].id) : undefined
      const invoices = await apiGet(grant, '/invoices', organization)
      res.json({ organization: organization ?? null, invoices: invoices.length })
    } catch (err) {
      console.log(`[app] GET /invoices: ${err.name}: ${err.message}`)
      if (err instanceof Unavailable) return res.status(503).type('text').send('Request Finance is busy')
      if (!(err instanceof LoginRequired || err instanceof InsufficientScope)) {
        return res.status(502).type('text').send('Request Finance error')
      }
      grants.delete(req.user.grantId)
      req.session.consentNeeded = err instanceof InsufficientScope // the next login asks with prompt=consent
      req.logout({ keepSessionInfo: true }, () => res.redirect('/login'))
    }
  })

  app.use((err, req, res, next) => { // e.g. Request Finance unreachable at login
    console.log(`[app] ${req.method} ${req.path}: ${err.name}: ${err.message}`)
    res.status(502).type('text').send('Request Finance error')
  })
  return app
}
