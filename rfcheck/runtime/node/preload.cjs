'use strict'
// rfcheck's instrumentation of a Node.js target, loaded with NODE_OPTIONS=--require <this file>.
//
// Every TCP connection Node opens goes through net.Socket.prototype.connect: Node's http and
// https modules, its built-in fetch (undici), axios and got alike. Connections to Request
// Finance's real hosts (RFCHECK_HOSTS: "auth.request.finance:443=127.0.0.1:40123,...") go to
// the mock's loopback address and port instead. The address is changed only at the TCP level,
// after tls.connect has taken the host name: the TLS server name (SNI) and the certificate
// check still use the real name, and the mock answers with a certificate for it from the run's
// CA, which Node trusts through NODE_EXTRA_CA_CERTS. Connections to other remote names are
// refused with ECONNREFUSED and reported to rfcheck (SEC-04); loopback and IP addresses pass.
//
// A lane's fixed-port app (RFCHECK_PORTS: "3000=23456,..."): a server that listens on port 3000
// listens on the lane's port 23456 instead, and says 3000 when asked its address; a connection to
// a loopback name on port 3000 (the app calling itself) reaches 23456. So every lane runs its own
// instance of an app written for port 3000, and the app, its redirect URI and its logs still say 3000.
//
// The process says hello on rfcheck's control socket (RFCHECK_CONTROL), so that the report can
// say how it was instrumented. Its clock (Date, and the monotonic clock behind performance.now,
// process.hrtime and timers) is moved by libfaketime, not here: when libfaketime is mapped into
// the process, it acknowledges each travel rfcheck announces with the wall clock it then reads,
// so that rfcheck knows the clock really moved.

const net = require('node:net')
const os = require('node:os')
const fs = require('node:fs')

const control = process.env.RFCHECK_CONTROL
const routes = new Map()
for (const entry of (process.env.RFCHECK_HOSTS || '').split(',')) {
  const [from, to] = entry.split('=')
  if (!from || !to) continue
  const cut = to.lastIndexOf(':')
  routes.set(from.toLowerCase(), { host: to.slice(0, cut), port: Number(to.slice(cut + 1)) })
}
const ports = new Map() // the port the app asked for -> the lane's
for (const entry of (process.env.RFCHECK_PORTS || '').split(',')) {
  const [from, to] = entry.split('=').map(Number)
  if (from > 0 && to > 0) ports.set(from, to)
}
const lanePorts = new Map([...ports].map(([from, to]) => [to, from]))
const intercepted = new Set([...routes.keys()].map((key) => key.slice(0, key.lastIndexOf(':'))))
const local = new Set(['localhost', os.hostname().toLowerCase()])
try {
  for (const line of fs.readFileSync('/etc/hosts', 'utf8').split('\n')) {
    for (const name of line.split('#')[0].trim().split(/\s+/).slice(1)) local.add(name.toLowerCase())
  }
} catch {}

let channel = null
const pending = []

// messages are written as soon as the channel is open; it keeps the process alive only until
// they are out, so that a short-lived command still says hello
function send (message) {
  if (!control) return
  pending.push(JSON.stringify(message) + '\n')
  if (channel === null) {
    channel = originalConnect.call(new net.Socket(), { path: control })
    channel.on('error', () => { pending.length = 0 })
    channel.on('connect', flush)
    channel.on('data', receive)
  } else if (!channel.connecting && !channel.destroyed) {
    flush()
  }
}

function flush () {
  channel.ref()
  while (pending.length) channel.write(pending.shift())
  channel.write('', () => { if (pending.length === 0) channel.unref() })
}

let received = ''

// rfcheck announces each travel: {"offset": seconds, "generation": n}; the answer is the clock read now
function receive (chunk) {
  received += chunk.toString('utf8')
  let end
  while ((end = received.indexOf('\n')) >= 0) {
    const line = received.slice(0, end)
    received = received.slice(end + 1)
    let message
    try { message = JSON.parse(line) } catch { continue }
    if (message && typeof message.generation === 'number') send({ ack: message.generation, wall: Date.now() / 1000 })
  }
}

function fakedClock () {
  try {
    return fs.readFileSync('/proc/self/maps', 'utf8').includes('libfaketime') ? 'libfaketime' : ''
  } catch {
    return ''
  }
}

function remote (host) {
  if (local.has(host) || host.endsWith('.localhost')) return false
  return net.isIP(host) === 0
}

const originalConnect = net.Socket.prototype.connect

net.Socket.prototype.connect = function connect (...args) {
  let options = args[0]
  if (Array.isArray(options)) options = options[0] // already normalized by net.connect: [options, callback]
  if (typeof options === 'number' || (typeof options === 'string' && /^\d+$/.test(options))) {
    options = { port: Number(options), host: typeof args[1] === 'string' ? args[1] : 'localhost' }
    const route = routeFor(options)
    if (route === undefined) return originalConnect.apply(this, args)
    if (route === null) return refuse(this, options)
    return originalConnect.call(this, route.port, route.host, ...args.slice(typeof args[1] === 'string' ? 2 : 1))
  }
  if (options === null || typeof options !== 'object' || options.path) return originalConnect.apply(this, args)
  const route = routeFor(options)
  if (route === null) return refuse(this, options)
  if (route !== undefined) {
    options.host = route.host
    options.port = route.port
    delete options.lookup // the mock's address needs no name resolution
  }
  return originalConnect.apply(this, args)
}

// undefined: leave the connection alone; null: refuse it; otherwise where it goes instead
function routeFor (options) {
  const host = String(options.host || 'localhost').toLowerCase().replace(/\.$/, '')
  const route = routes.get(`${host}:${Number(options.port)}`)
  if (route) return route
  if (ports.has(Number(options.port)) && loopback(host)) return { host, port: ports.get(Number(options.port)) }
  if (intercepted.has(host) || (routes.size > 0 && remote(host))) return null
  return undefined
}

function loopback (host) {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.') ||
    host.endsWith('.localhost')
}

if (ports.size > 0) {
  const originalListen = net.Server.prototype.listen
  net.Server.prototype.listen = function listen (...args) {
    const first = args[0]
    if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
      if (ports.has(Number(first))) args[0] = ports.get(Number(first))
    } else if (first !== null && typeof first === 'object' && !first._handle && !first.path &&
               ports.has(Number(first.port))) {
      args[0] = { ...first, port: ports.get(Number(first.port)) }
    }
    return originalListen.apply(this, args)
  }
  const originalAddress = net.Server.prototype.address
  net.Server.prototype.address = function address () {
    const where = originalAddress.call(this)
    if (where !== null && typeof where === 'object' && lanePorts.has(where.port)) {
      return { ...where, port: lanePorts.get(where.port) }
    }
    return where
  }
}

function refuse (socket, options) {
  const host = String(options.host || '')
  const port = Number(options.port) || 0
  send({ refused: { host, port, via: 'preload' } })
  const error = new Error(`connect ECONNREFUSED ${host}:${port} (rfcheck: only Request Finance's hosts are ` +
    'reachable while it is mocked)')
  error.code = 'ECONNREFUSED'
  error.syscall = 'connect'
  process.nextTick(() => socket.destroy(error))
  return socket
}

send({
  hello: {
    runtime: 'node',
    version: process.versions.node,
    pid: process.pid,
    executable: process.execPath,
    hosts: routes.size > 0 ? 'preload' : '',
    ports: ports.size > 0 ? 'preload' : '',
    clock: fakedClock()
  }
})
