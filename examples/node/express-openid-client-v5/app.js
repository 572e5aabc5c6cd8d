// The Express 4 app: login, callback, and a page that reads the user's invoices.
//
// Browser sessions use express-session (memory store; the cookie holds only the signed session
// ID). The user's tokens live in one in-process object per login (UserGrant), referenced from
// the session by a random ID and never sent to the browser. They are not stored in the session
// itself: express-session hands each request its own copy and saves it back at the end, so two
// concurrent requests would each keep their own refresh token and could not share one refresh.
//
// Express 4 does not catch a rejected promise from an async route: every async handler here
// catches and answers, or passes the error to next(), so no Request Finance error crashes it.

'use strict'

const crypto = require('node:crypto')
const express = require('express')
const session = require('express-session')
const { RequestFinance, LoginRequired, InsufficientScope, TokenEndpointUnavailable, describe } = require('./request-finance')

/** Settings from the environment; `overrides` (the broken variant's option) win. */
function loadConfig(overrides = {}, env = process.env) {
  const missing = ['RF_CLIENT_ID', 'RF_CLIENT_SECRET', 'RF_REDIRECT_URI', 'RF_NETWORK'].filter((name) => !env[name])
  if (missing.length) throw new ConfigError(`missing environment variable(s) ${missing.join(', ')}`)
  if (env.RF_NETWORK !== 'test' && env.RF_NETWORK !== 'live') {
    throw new ConfigError('RF_NETWORK must be exactly "test" or "live"')
  }
  return {
    clientId: env.RF_CLIENT_ID,
    clientSecret: env.RF_CLIENT_SECRET,
    redirectUri: env.RF_REDIRECT_URI,
    network: env.RF_NETWORK,
    port: Number(env.PORT || 3000),
    // signs the session cookie; a random one per process when unset (sessions end on restart)
    sessionSecret: env.SESSION_SECRET || crypto.randomBytes(32).toString('hex'),
    ...overrides,
  }
}

class ConfigError extends Error {}

function createApp(options) {
  const rf = new RequestFinance(options)
  const grants = new Map() // grant ID -> UserGrant
  const app = express()
  app.disable('x-powered-by')
  app.use(session({
    name: 'rf.sid',
    secret: options.sessionSecret,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax' },
  }))

  app.get('/', (req, res) => res.type('text').send('ok')) // readiness probe

  app.get('/login', async (req, res, next) => {
    try {
      const consent = Boolean(req.session.consentNeeded)
      const { url, pending } = await rf.startLogin({ consent })
      req.session.pending = pending // one login at a time per browser; its state is used once
      console.log(`[app] login started (prompt=consent: ${consent})`)
      res.redirect(url)
    } catch (err) {
      next(err) // e.g. discovery failed: the error handler answers 502
    }
  })

  app.get('/callback', async (req, res, next) => {
    try {
      const pending = req.session.pending
      if (!pending) return res.status(400).type('text').send('login failed: no login in progress')
      // A callback this browser's login did not start (login CSRF, code injection) is refused
      // and leaves the pending login alone (RFC 6749 §10.12); client.callback() checks it again.
      if (!sameString(req.query.state, pending.state)) {
        console.log('[app] login refused: state mismatch')
        return res.status(400).type('text').send('login failed: state mismatch')
      }
      delete req.session.pending // each state is used once
      const client = await rf.client()
      let grant
      try {
        grant = await rf.finishLogin(client.callbackParams(req), pending)
      } catch (err) {
        if (err instanceof TokenEndpointUnavailable) {
          console.log(`[app] login failed: ${describe(err)}`)
          return res.status(503).type('text').send('Request Finance is unavailable, try again later')
        }
        console.log(`[app] login refused: ${describe(err)}`)
        return res.status(400).type('text').send('login failed')
      }
      // A new session ID at login (session fixation); the consent request has been answered.
      await new Promise((resolve, reject) => req.session.regenerate((e) => (e ? reject(e) : resolve())))
      const id = crypto.randomUUID()
      grants.set(id, grant)
      req.session.grantId = id
      req.session.consentNeeded = false
      console.log('[app] login completed')
      res.type('text').send('logged in')
    } catch (err) {
      next(err)
    }
  })

  app.get('/invoices', async (req, res) => {
    const grant = grants.get(req.session.grantId)
    if (!grant) return res.redirect('/login')
    try {
      const organizations = await rf.organizations(grant)
      const personal = await rf.apiGet(grant, '/invoices')
      const body = { invoices: personal.length, organization: organizations[0] || null }
      if (organizations.length) {
        body.organizationInvoices = (await rf.apiGet(grant, '/invoices', organizations[0])).length
      }
      res.json(body)
    } catch (err) {
      if (err instanceof LoginRequired) { // invalid_grant on refresh: the user connects again
        endGrant(req, grants)
        return res.redirect('/login')
      }
      if (err instanceof InsufficientScope) {
        endGrant(req, grants)
        req.session.consentNeeded = true // the next /login asks with prompt=consent
        return res.status(403).type('text').send('insufficient scope: log in again to grant it')
      }
      console.log(`[app] GET /invoices failed: ${describe(err)}`)
      if (err instanceof TokenEndpointUnavailable) { // the session (and refresh token) stays
        return res.status(503).type('text').send('Request Finance is unavailable, try again later')
      }
      res.status(502).type('text').send('Request Finance error')
    }
  })

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    console.log(`[app] ${req.method} ${req.path} failed: ${describe(err)}`)
    res.status(502).type('text').send('Request Finance error')
  })

  return app
}

function endGrant(req, grants) {
  grants.delete(req.session.grantId)
  delete req.session.grantId
}

function sameString(received, expected) {
  const a = Buffer.from(typeof received === 'string' ? received : '')
  const b = Buffer.from(expected)
  return a.length === b.length && crypto.timingSafeEqual(a, b)
}

/** Builds the app from the environment, with `overrides` on top, and listens on PORT. */
function start(overrides = {}) {
  let options
  try {
    options = loadConfig(overrides)
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
