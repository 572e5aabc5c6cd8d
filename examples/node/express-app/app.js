// The Express app: login, callback, and a page that reads the user's invoices.
//
// Browser sessions use express-session (signed cookie, memory store). The user's grant (tokens)
// lives in one in-process object per login, referenced from the session by a random ID: unlike
// the session copy that express-session hands each request, it is shared by concurrent requests,
// so they see the same rotated refresh token and share one refresh.

import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import express from 'express'
import session from 'express-session'
import { ConfigError, loadConfig } from './config.js'
import { InsufficientScope, LoginRequired, RequestFinance, TokenEndpointUnavailable } from './request-finance.js'

/** The Express app for `options` (loadConfig() output, plus RequestFinance's variant options). */
export function createApp(options) {
  const rf = new RequestFinance(options)
  const grants = new Map() // grant ID -> UserGrant
  const app = express()
  app.disable('x-powered-by')
  app.use(session({
    name: 'rf.sid',
    secret: randomBytes(32).toString('hex'), // per process: sessions end with it (memory store)
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', secure: 'auto' },
  }))

  app.get('/', (req, res) => res.type('text').send('ok')) // readiness probe

  app.get('/login', async (req, res) => {
    const { url, pending } = await rf.startLogin({ consent: Boolean(req.session.consentNeeded) })
    req.session.pending = pending // one login at a time per browser; its state is used once
    console.log(`[app] login started (prompt=consent: ${Boolean(req.session.consentNeeded)})`)
    res.redirect(url.href)
  })

  app.get('/callback', async (req, res) => {
    const pending = req.session.pending
    if (!pending) return res.status(400).type('text').send('login failed: no login in progress')
    // A callback this browser's login did not start (login CSRF, code injection) is refused
    // and leaves the pending login alone (RFC 6749 §10.12); openid-client checks state again.
    if (!sameString(req.query.state, pending.state)) {
      console.log('[app] login refused: state mismatch')
      return res.status(400).type('text').send('login failed: state mismatch')
    }
    delete req.session.pending // each state is used once
    // The registered redirect URI with the query received: openid-client sends the URL without
    // its query as redirect_uri, so it is exactly the one of the authorization request.
    const callbackUrl = new URL(options.redirectUri)
    callbackUrl.search = new URL(req.originalUrl, callbackUrl).search
    let grant
    try {
      grant = await rf.finishLogin(callbackUrl, pending)
    } catch (err) {
      console.log(`[app] login refused: ${describe(err)}`)
      return res.status(400).type('text').send(`login failed: ${describe(err)}`)
    }
    // A new session ID at login (session fixation); the consent request has been answered.
    await new Promise((resolve, reject) => req.session.regenerate((e) => (e ? reject(e) : resolve())))
    const id = randomUUID()
    grants.set(id, grant)
    Object.assign(req.session, { grantId: id, consentNeeded: false })
    console.log('[app] login completed')
    res.type('text').send('logged in')
  })

  app.get('/invoices', async (req, res) => {
    const grant = grants.get(req.session.grantId)
    if (!grant) return res.status(401).type('text').send('login required')
    try {
      const organizations = await rf.organizations(grant)
      const personal = await rf.apiGet(grant, '/invoices')
      const body = { invoices: personal.length, organization: organizations[0] ?? null }
      if (organizations.length) body.organizationInvoices = (await rf.apiGet(grant, '/invoices', organizations[0])).length
      res.json(body)
    } catch (err) {
      if (err instanceof LoginRequired) {
        endGrant(req, grants)
        return res.status(401).type('text').send('login required')
      }
      if (err instanceof InsufficientScope) {
        endGrant(req, grants)
        req.session.consentNeeded = true // the next /login asks with prompt=consent
        return res.status(403).type('text').send('insufficient scope: log in again to grant it')
      }
      console.log(`[app] GET /invoices failed: ${describe(err)}`)
      res.status(err instanceof TokenEndpointUnavailable ? 503 : 502).type('text').send('Request Finance error')
    }
  })

  app.use((err, req, res, next) => { // e.g. discovery failed in /login
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
  return a.length === b.length && timingSafeEqual(a, b)
}

/** An error in words, without tokens (openid-client's messages and OAuth error bodies hold none). */
function describe(err) {
  const oauthError = err.error ? ` (${err.error}${err.error_description ? `: ${err.error_description}` : ''})` : ''
  return `${err.name}: ${err.message}${oauthError}`
}

/** Builds the app from the environment, with `overrides` on top, and listens on PORT. */
export function start(overrides = {}) {
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
