// A command target that hard-codes Request Finance's real hosts and reaches them with Node's
// https module and its built-in fetch (undici), neither of which reads HTTPS_PROXY; then it
// tries a host that is not Request Finance's. Exit status 0 when both clients got an answer.
const https = require('node:https')

const DISCOVERY = 'https://auth.request.finance/.well-known/openid-configuration'

function viaHttps () {
  return new Promise((resolve, reject) => {
    https.get(DISCOVERY, (res) => {
      let body = ''
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => resolve(JSON.parse(body).issuer))
    }).on('error', reject)
  })
}

async function main () {
  let failed = false
  for (const [name, get] of [['https', viaHttps], ['fetch', async () => (await (await fetch(DISCOVERY)).json()).issuer]]) {
    try {
      console.log(name, await get())
    } catch (err) {
      failed = true
      console.log(name, 'failed:', err.message, err.cause ? err.cause.message : '')
    }
  }
  try {
    await fetch('https://telemetry.example.com/collect')
    console.log('foreign host reached')
  } catch (err) {
    console.log('foreign host refused:', err.cause ? err.cause.code : err.message)
  }
  process.exitCode = failed ? 1 : 0
}

main()
