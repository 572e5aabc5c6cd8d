// BROKEN on purpose (REL-01): a promise nobody handles rejects when Request Finance says no, and
// Node 20 ends the process on an unhandled rejection (--unhandled-rejections=throw, the default
// since Node 15).
//
// The mistake: usage logging chained with .then() and no .catch(). Every API read is counted in
// the background, on a promise that nobody awaits. When the read fails (the refresh token was
// revoked, 403 insufficient_scope, the token endpoint still busy after the retries, an API error),
// the route handles its own copy of the error, but the background promise rejects as well, nobody
// handles it, and the whole app goes down with every user's session.
//
// Why not simply "an async route without try/catch": this app runs on Express 5, which passes a
// rejected promise returned by a route handler to the error handler. Such a route answers 500 and
// the process lives on (Express 4 did not do that: there, the same route crashed the process).
import { start } from './app.js'
import { RequestFinance } from './request-finance.js'

const apiGet = RequestFinance.prototype.apiGet
RequestFinance.prototype.apiGet = function (grant, path, organization) {
  const read = apiGet.call(this, grant, path, organization)
  read.then((body) => console.log(`[usage] GET ${path}: ${Array.isArray(body) ? body.length : 1} item(s)`))
  return read // the route awaits this one and handles its errors; the .then() branch above is orphaned
}

start()
