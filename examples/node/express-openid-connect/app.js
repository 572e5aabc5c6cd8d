// The Express 4 app on Auth0's express-openid-connect (2.x), configured as the SDK's docs show.
//
// The SDK does discovery, the authorization request (state, nonce, PKCE S256), the callback
// (code exchange with client_secret_basic, ID token verification: RS256 against the JWKS, iss,
// aud, exp, iat, nonce), and the session: its default, an encrypted cookie (`appSession`, JWE
// A256GCM with a key derived from SECRET) that holds the tokens, rolling 24 h, 7 days at most.
// The browser holds that cookie but cannot read the tokens in it.
//
// Express 4 does not catch a rejected promise from an async route: /invoices catches every
// error and answers with a page, and the error handler at the end answers whatever the SDK
// passes on (a refused callback: 400; Request Finance unreachable: 502). Nothing answers 500.

'use strict'

const express = require('express')
const { auth, requiresAuth } = require('express-openid-connect')
const {
  RequestFinanceApi, UserTokens, LoginRequired, InsufficientScope, Unavailable, describe,
} = require('./request-finance')

const SCOPE = 'openid profile email offline_access user:read'

/** Settings from the environment. The SDK's own variables are passed on as they are. */
function loadConfig(env = process.env) {
  const missing = ['ISSUER_BASE_URL', 'BASE_URL', 'CLIENT_ID', 'CLIENT_SECRET', 'SECRET', 'RF_API_URL', 'RF_NETWORK']
    .filter((name) => !env[name])
  if (missing.length) throw new ConfigError(`missing environment variable(s) ${missing.join(', ')}`)
  if (env.RF_NETWORK !== 'test' && env.RF_NETWORK !== 'live') {
    throw new ConfigError('RF_NETWORK must be exactly "test" or "live"')
  }
  return {
    issuerBaseURL: env.ISSUER_BASE_URL,
    baseURL: env.BASE_URL,
    clientID: env.CLIENT_ID,
    clientSecret: env.CLIENT_SECRET,
    secret: env.SECRET,
    apiUrl: env.RF_API_URL,
    network: env.RF_NETWORK,
    port: Number(env.PORT || 3000),
  }
}

class ConfigError extends Error {}

function createApp(options) {
  const api = new RequestFinanceApi(options)
  const app = express()
  app.disable('x-powered-by')

  app.use(auth({
    issuerBaseURL: options.issuerBaseURL,
    baseURL: options.baseURL,
    clientID: options.clientID,
    clientSecret: options.clientSecret,
    secret: options.secret,
    authRequired: false,
    authorizationParams: {
      response_type: 'code',
      audience: 'accounts',
      scope: SCOPE,
    },
    // Our own GET /login (below), so that it can ask for consent again after insufficient_scope.
    routes: { login: false },
    // A completed login has answered any pending request for consent.
    afterCallback: (req, res, session) => ({ ...session, consent_needed: false }),
  }))

  app.get('/', (req, res) => res.type('text').send('ok')) // readiness probe

  app.get('/login', (req, res) => res.oidc.login({
    returnTo: '/',
    authorizationParams: req.appSession.consent_needed ? { prompt: 'consent' } : {},
  }))

  app.get('/invoices', requiresAuth(), async (req, res) => {
    try {
      if (req.appSession.consent_needed) return askConsent(req, res)
      const tokens = new UserTokens(req)
      const organizations = await api.get(tokens, '/users/organizations') // needs user:read
      const organization = Array.isArray(organizations) && organizations.length ? String(organizations[0].id) : undefined
      const invoices = await api.get(tokens, '/invoices', organization)
      res.json({ organization: organization || null, invoices: Array.isArray(invoices) ? invoices.length : 0 })
    } catch (err) {
      if (err instanceof LoginRequired) { // invalid_grant, or a fresh token refused: connect again
        console.log(`[app] the user must log in again: ${describe(err)}`)
        req.appSession = undefined // the SDK clears its session cookie
        return res.redirect('/login')
      }
      if (err instanceof InsufficientScope) { // never retried: the user is asked again (SCOPE-05)
        console.log(`[app] ${describe(err)}: asking the user to consent again`)
        req.appSession.consent_needed = true
        return askConsent(req, res)
      }
      console.log(`[app] GET /invoices failed: ${describe(err)}`)
      if (err instanceof Unavailable) { // the session and its refresh token stay
        return res.status(503).type('text').send('Request Finance is unavailable, try again later')
      }
      res.status(502).type('text').send('Request Finance error')
    }
  })

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    console.log(`[app] ${req.method} ${req.path} failed: ${describe(err)}`)
    if (res.headersSent) return
    const status = err.status || err.statusCode
    if (status >= 400 && status < 500) { // e.g. a callback the SDK refused (state, ID token)
      return res.status(status).type('text').send(req.path === '/callback' ? 'login failed' : 'request refused')
    }
    res.status(502).type('text').send('Request Finance error')
  })

  return app
}

/** Sends the user to Request Finance to grant the missing scope (prompt=consent). */
function askConsent(req, res) {
  return res.oidc.login({ returnTo: '/invoices', authorizationParams: { prompt: 'consent' } })
}

/** Builds the app from the environment and listens on PORT. */
function start() {
  let options
  try {
    options = loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    console.error(`configuration error: ${err.message}`)
    process.exit(2)
  }
  const server = createApp(options).listen(options.port, '127.0.0.1', () => {
    console.log(`[app] listening on 127.0.0.1:${options.port} (network ${options.network})`)
  })
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
  return server
}

module.exports = { createApp, loadConfig, start }
