// Starts the app: every setting from the environment (see app.js and README.md).
import { createApp, loadSettings } from './app.js'

let settings
try {
  settings = loadSettings()
} catch (err) {
  console.error(`configuration error: ${err.message}`)
  process.exit(2)
}
createApp(settings).listen(settings.port, '127.0.0.1', () => {
  console.log(`[app] listening on 127.0.0.1:${settings.port} (network ${settings.network})`)
})
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
